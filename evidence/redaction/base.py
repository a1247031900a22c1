"""What the face detectors (detection.py) and the plate detector (plates.py) share: the detection
record, box geometry, OpenCV's cascades, and the loading of a pinned ONNX model."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2

# Cascades bundled with the opencv-python wheel.
CASCADES = {
    "frontal": "haarcascade_frontalface_default.xml",
    "profile": "haarcascade_profileface.xml",
}


@dataclass
class Detection:
    kind: str  # face | plate
    box: tuple[int, int, int, int]  # x, y, w, h in the original's pixels
    score: float = 1.0


def _load(name: str) -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, CASCADES[name])
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV cascade {path} could not be loaded")
    return cascade


def _overlap(a, b) -> int:
    """Area shared by two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return iw * ih if iw > 0 and ih > 0 else 0


def _iou(a, b) -> float:
    inter = _overlap(a, b)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


def _suppress(boxes: list[tuple], threshold: float = 0.3) -> list[tuple]:
    """Non-maximum suppression over (box, score): keeps the best of overlapping boxes."""
    kept: list[tuple] = []
    for box, score in sorted(boxes, key=lambda b: -b[1]):
        if all(_iou(box, k[0]) < threshold and not _inside(box, k[0]) for k in kept):
            kept.append((box, score))
    return kept


def _inside(a, b) -> bool:
    """a mostly inside b or b mostly inside a (a face found twice at two scales)."""
    inter = _overlap(a, b)
    return bool(inter) and inter >= 0.7 * min(a[2] * a[3], b[2] * b[3])


def _session(path: Path, sha256: str, threads: int):
    """An onnxruntime session on a model file of this package, refused unless it is the pinned one."""
    import onnxruntime

    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{path} is not the pinned model (SHA-256 {digest})")
    options = onnxruntime.SessionOptions()
    # One thread by default: ffmpeg decodes beside it; measured faster on a busy 2-core host (docs/redaction.md).
    options.intra_op_num_threads = threads
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the model carries unused batch-norm counters: ORT warns about them
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _clip(box, w: int, h: int) -> tuple[int, int, int, int]:
    x, y, bw, bh = box
    x0, y0 = max(0, x), max(0, y)
    return (x0, y0, max(1, min(w, x + bw) - x0), max(1, min(h, y + bh) - y0))


def _rescale(box, scale: float) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return (int(round(x * scale)), int(round(y * scale)), int(round(w * scale)), int(round(h * scale)))
