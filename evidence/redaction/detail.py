"""How much of a face's detail a redacted copy still shows (issue 16): the measure behind the
second look's "detail left" and bench/redaction.py's "detail gone"."""
from __future__ import annotations

import cv2
import numpy as np

# The detail of a face is measured at the scale of its features, not of its pixels: the box is
# brought to DETAIL_WIDTH pixels across (an eye a few pixels, whatever the face's size), and what
# counts is the original's detail found again in the copy, so that an encoder's grain is not
# "detail left" and an upscaled face weighs as much as a sharp one. At 64 px the 3x3 Laplacian sees
# features ~1/30 of the box, finer than the blur's blocks (1/6): a blurred edge of hair or of a car
# roof in a box is not counted as a face left (at 32 px it was; docs/redaction.md, "Detail gone").
DETAIL_WIDTH = 64
DETAIL_FLAT = 1.0  # mean squared Laplacian at that scale below which a box shows nothing to lose


def feature_detail(grey: np.ndarray, box) -> np.ndarray | None:
    """The Laplacian (mean removed) of ``box`` of a grey frame brought to DETAIL_WIDTH pixels
    across, or None when the box is empty."""
    x, y, w, h = (int(round(v)) for v in box)
    crop = grey[max(0, y):max(0, y + h), max(0, x):max(0, x + w)]
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        return None
    height = max(8, int(round(DETAIL_WIDTH * crop.shape[0] / float(crop.shape[1]))))
    small = cv2.resize(crop, (DETAIL_WIDTH, height),
                       interpolation=cv2.INTER_AREA if crop.shape[1] > DETAIL_WIDTH else cv2.INTER_LINEAR)
    lap = cv2.Laplacian(small.astype(np.float32), cv2.CV_32F)[1:-1, 1:-1]
    return lap - lap.mean()


def detail_kept(original: np.ndarray, copy: np.ndarray, box) -> float | None:
    """Share of the original's facial detail found again in the copy inside ``box``: the copy's
    feature-scale Laplacian projected on the original's (1 for an untouched face, ~0.9 after a
    re-encode, under 0.1 under the blur). Noise the encoder adds to the copy, or the blur's own
    gradients, do not come from the face and do not count; a face left sharp, or a blur beside it,
    does. None: the original shows nothing there (a flat, dark or empty box)."""
    before, after = feature_detail(original, box), feature_detail(copy, box)
    if before is None or after is None or after.shape != before.shape:
        return None
    energy = float((before * before).sum())
    if energy < DETAIL_FLAT * before.size:
        return None
    return float((before * after).sum()) / energy
