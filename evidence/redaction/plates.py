"""Licence plates: a plate is a line of characters, so plates are looked for with a text detector,
PaddleOCR's PP-OCRv4 (Apache-2.0, ``data/ppocr_det.onnx``, run with onnxruntime like CenterFace).
Measured on labelled photographs of cars (bench/plates.py): OpenCV's Russian-plate cascade, the
plate model before it, covered 77.8 % of European plates, the text detector 100 %; united with the
cascade it covered the same European and Brazilian plates and 2 more American ones of 222, for a
third more time per pass, so the cascade is no longer run (docs/redaction.md).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .base import Detection, _clip, _inside, _iou, _rescale, _session

# PaddleOCR's PP-OCRv4 mobile text detector (a DB network: a per-pixel probability of text), as
# converted to ONNX and shipped in the rapidocr-onnxruntime 1.4.4 wheel
# (rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx, unchanged). Pinned like CenterFace.
TEXT_DETECTOR_PATH = Path(__file__).parent / "data" / "ppocr_det.onnx"
TEXT_DETECTOR_SHA256 = "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"


@lru_cache(maxsize=4)
def _text_session(threads: int):
    return _session(TEXT_DETECTOR_PATH, TEXT_DETECTOR_SHA256, threads)


class PlateDetector:
    """Licence plates: the lines of characters that PP-OCRv4's text detector finds, on a frame (RGB or
    grey) already scaled to the analysis width.

    The text detector gives a probability of text per pixel; the pixels above ``TEXT_THRESHOLD``
    form the lines; a line whose mean probability is at least ``LINE_SCORE`` is kept when it is
    shaped like a plate's characters (``ASPECT``: wider than tall, up to a long single row; not
    taller than ``MAX_HEIGHT``) and widened on every side by ``UNCLIP`` × its area / its perimeter
    (about 1.5 × its height: the network finds the characters, the blur must take the plate around
    them). Measured on labelled photographs (bench/plates.py, docs/redaction.md): widening 1.6
    (PaddleOCR's own) covered 98.1 % of European and 85.1 % of Brazilian plates, 3.0 100 % and
    97.4 %. Other text (a sign, a shop front, a word on a jacket) is blurred too: the copy loses
    it, which an anonymised copy can afford.
    """

    TEXT_THRESHOLD = 0.3
    LINE_SCORE = 0.5
    UNCLIP = 3.0
    ASPECT = (1.6, 12.0)  # 1.2 let an open mouth through (Carphone); 1.6 and 2.0 cover the same plates
    MAX_HEIGHT = 0.2  # of the frame's height: characters taller than that are not a plate's

    def __init__(self, *, threads: int | None = None):
        self.session = _text_session(threads or int(os.environ.get("TEMOIN_DETECTOR_THREADS", "1")))
        self.input = self.session.get_inputs()[0].name

    def text_lines(self, frame: np.ndarray) -> list[tuple]:
        """[(box, score)] of plate-shaped text lines in ``frame``'s pixels (RGB or grey)."""
        h, w = frame.shape[:2]
        rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB) if frame.ndim == 2 else frame
        # The network wants sides that are multiples of 32 and PaddleOCR's normalisation (x/127.5 − 1, BGR).
        tw, th = max(32, int(round(w / 32)) * 32), max(32, int(round(h / 32)) * 32)
        blob = cv2.dnn.blobFromImage(rgb, 1 / 127.5, (tw, th), (127.5, 127.5, 127.5), swapRB=True)
        prob = self.session.run(None, {self.input: blob})[0][0, 0]
        mask = cv2.dilate((prob > self.TEXT_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        sx, sy = w / float(tw), h / float(th)
        out = []
        for i in range(1, count):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if bw < 3 or bh < 3 or not self.ASPECT[0] <= bw / bh <= self.ASPECT[1] or bh > self.MAX_HEIGHT * th:
                continue
            score = float(prob[y:y + bh, x:x + bw][labels[y:y + bh, x:x + bw] == i].mean())
            if score < self.LINE_SCORE:
                continue
            d = area * self.UNCLIP / (2.0 * (bw + bh))
            box = (int((x - d) * sx), int((y - d) * sy), int((bw + 2 * d) * sx), int((bh + 2 * d) * sy))
            out.append((_clip(box, w, h), score))
        return out

    def detect(self, frame: np.ndarray, *, scale: float) -> list[Detection]:
        """Plates in ``frame`` (the downscaled frame, RGB or grey); boxes in original pixels."""
        found = _merge(self.text_lines(frame))
        return [Detection("plate", _rescale(b, scale), s) for b, s in found]


def _merge(boxes: list[tuple], threshold: float = 0.3) -> list[tuple]:
    """Overlapping (box, score) pairs made into one box around them all, with the best score: a
    plate found as two lines of text is one track blurring all of it."""
    merged: list[list] = []
    for box, score in sorted(boxes, key=lambda b: -b[1]):
        for m in merged:
            if _iou(box, m[0]) >= threshold or _inside(box, m[0]):
                x0, y0 = min(box[0], m[0][0]), min(box[1], m[0][1])
                x1 = max(box[0] + box[2], m[0][0] + m[0][2])
                y1 = max(box[1] + box[3], m[0][1] + m[0][3])
                m[0] = (x0, y0, x1 - x0, y1 - y0)
                break
        else:
            merged.append([box, score])
    return [(tuple(m[0]), m[1]) for m in merged]
