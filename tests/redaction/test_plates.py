"""Licence plates (issue 16): a French plate is found by the text detector where the plate cascade
finds nothing, and a plate moving through a clip is under the blur in every frame it is on.

The plate is drawn (no real footage with a readable plate has a licence that lets it be kept
here): the French format (520 x 110 mm, blue band with the country letter, "AA-123-AA" in black
on white) laid on the real Carphone footage scaled to 720p. Real plates are measured by
bench/plates.py on labelled photographs (docs/redaction.md).
"""
from __future__ import annotations

import math
import cv2
import numpy as np
import pytest

from evidence.integrations import rawvideo
from evidence.redaction import detection
from evidence.redaction import plates as plate_module
from evidence.redaction.analysis import analyse_file
from evidence.redaction.models import Track
from evidence.redaction.render import frame_boxes

from .conftest import carphone_source
from .helpers import blur_mask, covered

WIDTH, HEIGHT = 1280, 720


def french_plate(text: str = "GZ-482-KL", width: int = 200) -> np.ndarray:
    """A French plate as a BGR image ``width`` pixels wide."""
    height = int(width * 110 / 520)
    plate = np.full((height, width, 3), 245, np.uint8)
    cv2.rectangle(plate, (0, 0), (width - 1, height - 1), (30, 30, 30), 2)
    band = int(width * 0.08)
    plate[2:height - 2, 2:band] = (160, 60, 0)
    cv2.putText(plate, "F", (band // 4, int(height * 0.85)), cv2.FONT_HERSHEY_SIMPLEX, height / 90,
                (255, 255, 255), 1, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_DUPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, 2)
    k = min(0.86 * (width - band) / tw, 0.62 * height / th)
    thick = max(1, round(k * 2.2))
    (tw, th), _ = cv2.getTextSize(text, font, k, thick)
    cv2.putText(plate, text, (band + (width - band - tw) // 2, (height + th) // 2), font, k, (20, 20, 20), thick,
                cv2.LINE_AA)
    return plate


def background_frames(count: int) -> list[np.ndarray]:
    """``count`` frames of real footage (Carphone, looped) at 1280x720, BGR."""
    src = carphone_source()
    assert src is not None
    with rawvideo.raw_video_reader(src, pix_fmt="bgr24") as reader:
        frames = [np.frombuffer(d, np.uint8).reshape(reader.height, reader.width, 3) for _, d in reader]
    return [cv2.resize(frames[i % len(frames)], (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC) for i in range(count)]


def with_plate(frame: np.ndarray, plate: np.ndarray, x: int, y: int) -> tuple[np.ndarray, tuple]:
    out = frame.copy()
    h, w = plate.shape[:2]
    out[y:y + h, x:x + w] = plate
    return out, (x, y, w, h)


def analysis_frame(bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """What the analysis gives the detector: RGB at the analysis width, and the scale back."""
    width = detection.DEFAULT_PARAMS["analysis_width"]
    small = cv2.resize(bgr, (width, round(HEIGHT * width / WIDTH)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB), WIDTH / float(width)


@pytest.mark.parametrize("width", [160, 220, 320])
def test_a_french_plate_is_under_the_blur_where_the_plate_cascade_finds_nothing(width):
    background = background_frames(1)[0]
    frame, truth = with_plate(background, french_plate(width=width), 560, 420)
    rgb, scale = analysis_frame(frame)
    plates = plate_module.PlateDetector()

    found = [d.box for d in plates.detect(rgb, scale=scale)]
    assert covered(blur_mask(found, WIDTH, HEIGHT), truth), (found, truth)
    # The Russian-plate cascade (the only plate model before issue 16) misses it: the text detector finds it.
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_russian_plate_number.xml")
    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert len(cascade.detectMultiScale(grey, scaleFactor=1.2, minNeighbors=4, minSize=(51, 12))) == 0
    # Without the plate the same frame has nothing blurred there.
    empty = [d.box for d in plates.detect(analysis_frame(background)[0], scale=scale)]
    assert not blur_mask(empty, WIDTH, HEIGHT)[truth[1]:truth[1] + truth[3], truth[0]:truth[0] + truth[2]].any()


def test_a_plate_crossing_the_frame_is_under_the_blur_in_every_frame(tmp_path):
    """Plates are looked for on one frame in eight and tracked in between, like faces: a plate
    crossing the frame while the camera shakes (±20 px, a period of one second, as a walking
    officer's camera) is covered from the first frame to the last, at the clip's own size."""
    count, plate = 100, french_plate("EH-731-PB", width=210)
    clip, truths = tmp_path / "plate.mp4", {}
    writer = rawvideo.redacted_writer(clip, audio_src=None, width=WIDTH, height=HEIGHT, rate="25")
    try:
        for index, frame in enumerate(background_frames(count)):
            x = 200 + 6 * index + 20 * math.sin(2 * math.pi * index / 25)
            y = 420 + 20 * math.cos(2 * math.pi * index / 17.5)
            frame, truths[index] = with_plate(frame, plate, int(x), int(y))
            writer.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    finally:
        writer.close()

    result = analyse_file(clip, params=dict(detection.DEFAULT_PARAMS))
    tracks = [Track(number=i, kind=t["kind"], keyframes=t["keyframes"], first_frame=t["first"], last_frame=t["last"])
              for i, t in enumerate(result["tracks"], start=1) if t["kind"] == "plate"]
    boxes = frame_boxes(tracks)
    missed = [f for f, truth in truths.items() if not covered(blur_mask(boxes.get(f, []), WIDTH, HEIGHT), truth)]
    assert result["frame_count"] == count
    assert missed == []
    assert len(tracks) == 1, [t.keyframes[:2] for t in tracks]  # one plate, one track to review


def test_overlapping_plate_boxes_become_one_box_around_them():
    merged = plate_module._merge([((10, 10, 100, 20), 0.9), ((0, 5, 60, 30), 2.5), ((300, 300, 50, 10), 0.6)])
    assert sorted(merged) == [((0, 5, 110, 30), 2.5), ((300, 300, 50, 10), 0.6)]


def test_a_changed_text_model_is_refused(tmp_path, monkeypatch):
    changed = tmp_path / "ppocr_det.onnx"
    data = bytearray(plate_module.TEXT_DETECTOR_PATH.read_bytes())
    data[-1] ^= 1
    changed.write_bytes(bytes(data))
    monkeypatch.setattr(plate_module, "TEXT_DETECTOR_PATH", changed)
    plate_module._text_session.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="not the pinned model"):
            plate_module.PlateDetector(threads=1)
    finally:
        plate_module._text_session.cache_clear()
