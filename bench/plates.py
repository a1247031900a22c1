#!/usr/bin/env python
"""Licence-plate recall of the redaction's plate detector (issue 16), on labelled real photographs.

Data: the end-to-end sets of OpenALPR's benchmark repository (photographs of cars taken in the
street, one text file per image with the plate's box and text), which is not copied here (AGPL-3.0
data, and no registry of this machine ships it): clone it and give its directory.

    git clone https://github.com/openalpr/benchmarks /srv/openalpr-benchmarks
    git -C /srv/openalpr-benchmarks checkout 9790ed2
    .venv/bin/python bench/plates.py /srv/openalpr-benchmarks/endtoend/eu /srv/openalpr-benchmarks/endtoend/br

Each image goes through what the analysis does to a video frame: scaled down to the analysis
width (``DEFAULT_PARAMS["analysis_width"]``, 512 px), then the production detector
(``detection.make_detector(DEFAULT_PARAMS)``, plates on). A labelled plate is **covered** when the
blurred regions (each detected plate box widened by the render's margin, as ``blur_region`` does)
cover at least 90 % of its area: its characters are then under the blur. Recall = covered /
labelled. Also printed: the same at the image's full resolution (what a finer pass would give),
and detections that cover no labelled plate (false alarms: a blurred patch of bodywork).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

COVERED = 0.9  # share of the labelled box under the blur
MARGIN = 0.2  # blur_region's default margin


def labels(directory: Path) -> list[tuple[Path, list[tuple[int, int, int, int]]]]:
    """(image, [plate boxes]) for every image of an OpenALPR end-to-end set with a label file."""
    out = []
    for txt in sorted(directory.glob("*.txt")):
        boxes = []
        for line in txt.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 5 and all(p.lstrip("-").isdigit() for p in parts[1:5]):
                x, y, w, h = (int(p) for p in parts[1:5])
                if w > 0 and h > 0:
                    boxes.append((x, y, w, h))
        image = next((p for p in (txt.with_suffix(s) for s in (".jpg", ".png", ".jpeg", ".JPG")) if p.exists()), None)
        if image is not None and boxes:
            out.append((image, boxes))
    return out


def widened(box, margin: float = MARGIN):
    x, y, w, h = box
    mx, my = int(w * margin), int(h * margin)
    return (x - mx, y - my, w + 2 * mx, h + 2 * my)


def coverage(truth, blurred) -> float:
    """Share of ``truth``'s area inside the union of ``blurred`` boxes (pixel mask)."""
    import numpy as np

    x, y, w, h = truth
    mask = np.zeros((h, w), dtype=bool)
    for bx, by, bw, bh in blurred:
        x0, y0 = max(0, bx - x), max(0, by - y)
        x1, y1 = min(w, bx + bw - x), min(h, by + bh - y)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return float(mask.mean())


def measure(sets: list[Path], *, full: bool) -> dict:
    import cv2

    from evidence.redaction import detection

    params = dict(detection.DEFAULT_PARAMS)
    detector = detection.make_detector(params)
    width = int(params["analysis_width"])
    result = {"images": 0, "plates": 0, "covered": 0, "false_alarms": 0, "seconds": 0.0, "per_set": {}}
    for directory in sets:
        counts = {"images": 0, "plates": 0, "covered": 0, "false_alarms": 0}
        for image, boxes in labels(directory):
            bgr = cv2.imread(str(image))
            if bgr is None:
                continue
            h, w = bgr.shape[:2]
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            scale = 1.0
            if not full and w > width:
                scale = w / float(width)
                rgb = cv2.resize(rgb, (width, int(round(h / scale))), interpolation=cv2.INTER_AREA)
            start = time.perf_counter()
            found = [d.box for d in detector.detect(rgb, scale=scale, plates=True) if d.kind == "plate"]
            result["seconds"] += time.perf_counter() - start
            blurred = [widened(b) for b in found]
            counts["images"] += 1
            counts["plates"] += len(boxes)
            counts["covered"] += sum(coverage(b, blurred) >= COVERED for b in boxes)
            counts["false_alarms"] += sum(all(coverage(t, [b]) == 0 for t in boxes) for b in blurred)
        result["per_set"][directory.name] = counts
        for key in counts:
            result[key] += counts[key]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", type=Path, help="directories of an OpenALPR end-to-end set (image + .txt)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    for directory in args.sets:
        if not labels(directory):
            parser.error(f"{directory}: no labelled images (image + .txt with 'name x y w h text')")

    import django

    django.setup()
    print(f"command: bench/plates.py {' '.join(str(s) for s in args.sets)}")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    report = {}
    print("\n| resolution | set | images | plates | covered (≥ 90 % under the blur) | recall | false alarms |")
    print("|---|---|---|---|---|---|---|")
    for name, full in (("analysis width (512 px)", False), ("full image", True)):
        r = measure(args.sets, full=full)
        report[name] = r
        for set_name, c in r["per_set"].items():
            print(f"| {name} | {set_name} | {c['images']} | {c['plates']} | {c['covered']} | "
                  f"{100.0 * c['covered'] / max(1, c['plates']):.1f} % | {c['false_alarms']} |")
        print(f"| {name} | **all** | {r['images']} | {r['plates']} | {r['covered']} | "
              f"**{100.0 * r['covered'] / max(1, r['plates']):.1f} %** | {r['false_alarms']} |")
    for name, r in report.items():
        print(f"{name}: {1000.0 * r['seconds'] / max(1, r['images']):.0f} ms per image (detector only)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
