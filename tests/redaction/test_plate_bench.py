"""bench/plates.py's own arithmetic: OpenALPR's label files read as the benchmark sets write them,
and a plate counted as covered only when the blurred regions hide ≥ 90 % of it."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_plates", ROOT / "bench" / "plates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_label_files_give_each_image_its_plate_boxes(tmp_path):
    plates = _bench()
    (tmp_path / "eu1.jpg").write_bytes(b"jpeg")
    (tmp_path / "eu1.txt").write_text("eu1.jpg\t396\t340\t203\t46\tM5XSX\n")
    (tmp_path / "eu2.txt").write_text("eu2.jpg\t1\t2\t3\t4\tAB\n")  # no image: left out
    (tmp_path / "eu3.jpg").write_bytes(b"jpeg")
    (tmp_path / "eu3.txt").write_text("eu3.jpg\tx\t2\t3\t4\n")  # unreadable label: left out

    assert plates.labels(tmp_path) == [(tmp_path / "eu1.jpg", [(396, 340, 203, 46)])]


def test_a_plate_is_covered_only_when_the_blur_hides_nine_tenths_of_it():
    plates = _bench()
    truth = (100, 100, 100, 20)
    assert plates.coverage(truth, [(100, 100, 100, 20)]) == 1.0
    assert plates.coverage(truth, [(100, 100, 50, 20), (150, 100, 50, 20)]) == 1.0
    assert plates.coverage(truth, [(100, 100, 85, 20)]) == 0.85
    assert plates.coverage(truth, [(0, 0, 50, 50)]) == 0.0
    # The render widens each box by its margin: a box a little short of the plate still hides it.
    assert plates.coverage(truth, [plates.widened((105, 102, 90, 16))]) == 1.0


def test_a_directory_without_labels_is_refused_with_a_message(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "plates.py"), str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "no labelled images" in run.stderr
