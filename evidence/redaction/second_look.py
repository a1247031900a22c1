"""The second look: the rendered copy decoded again and searched for any face left recognisable,
before anyone may approve it (CSI R241-12, R241-13: an anonymised copy for training or a third
party must hide everyone but the person it is for).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from evidence.integrations import ffmpeg, rawvideo

from . import detail, detection
from .jobs import PROGRESS_INTERVAL
from .models import Track


def _exempt(box, sharp_boxes) -> bool:
    """A face found on the copy inside a box kept sharp on purpose (the requester, mode others)."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return any(sx <= cx <= sx + sw and sy <= cy <= sy + sh for sx, sy, sw, sh in sharp_boxes)


def second_look(original: str | Path, copy: str | Path, *, tracks: list[Track], params: dict,
                progress: Callable[[int], None] | None = None, expected_frames: int = 0) -> dict:
    """Look at the rendered copy for any face left recognisable (issue 16).

    Two independent measures, frame by frame, original and copy decoded side by side:
    - the detail left in every box that was to be blurred (``detail.detail_kept``: the share of
      the original's feature-scale detail found again in the copy): a box whose detail survived
      means the blur missed its face (a frame offset, a render fault, a track behind a fast face);
    - CenterFace on the copy itself, on the frames the analysis did not look at (with a detection
      every other frame, analysis and second look together see every frame), at a higher
      threshold: a face it finds outside the boxes kept sharp on purpose is a face left.
    Returns {"passed", "faces_left": [{"frame", "box", "why", "score"}…], "frames", …}.
    """
    every = max(1, int(params.get("every", detection.DEFAULT_PARAMS["every"])))
    offset = every // 2
    threshold = float(params.get("check_threshold", detection.DEFAULT_PARAMS["check_threshold"]))
    ratio_max = float(params.get("check_detail_ratio", detection.DEFAULT_PARAMS["check_detail_ratio"]))
    info = ffmpeg.probe(original)
    width = min(int(params.get("analysis_width", detection.DEFAULT_PARAMS["analysis_width"])), info.width)
    detector = detection.CenterFaceDetector(threshold=threshold, plates=False)
    blurred = [t for t in tracks if t.blurred]
    sharp = [t for t in tracks if t.kept and t.is_subject]
    faces_left: list[dict] = []
    frames = detector_frames = boxes_measured = blurred_hits = 0
    last_report = 0.0
    orig_reader = rawvideo.raw_video_reader(original, width=width, pix_fmt="rgb24")
    copy_reader = rawvideo.raw_video_reader(copy, width=width, pix_fmt="rgb24")
    scale = info.width / float(orig_reader.width)
    shape = (orig_reader.height, orig_reader.width, 3)
    with orig_reader, copy_reader:
        for (index, a), (_, b) in zip(orig_reader, copy_reader):
            frames += 1
            orig = np.frombuffer(a, np.uint8).reshape(shape)
            out = np.frombuffer(b, np.uint8).reshape(shape)
            greys: list = []

            def detail_left(box) -> float | None:
                """Share of the original's detail found in the copy inside ``box`` (None: nothing to lose)."""
                if not greys:
                    greys.extend(detection.cv2.cvtColor(f, detection.cv2.COLOR_RGB2GRAY) for f in (orig, out))
                return detail.detail_kept(greys[0], greys[1], tuple(v / scale for v in box))

            for t in blurred:
                box = detection.box_at(t.keyframes, index, first=t.first_frame, last=t.last_frame)
                if box is None:
                    continue
                boxes_measured += 1
                left = detail_left(box)
                if left is not None and left > ratio_max:
                    faces_left.append({"frame": index, "box": list(box), "why": "detail", "score": round(left, 3),
                                       "track": t.number})
            if index % every == offset:
                detector_frames += 1
                sharp_boxes = [b_ for b_ in (detection.box_at(t.keyframes, index, first=t.first_frame,
                                                              last=t.last_frame) for t in sharp) if b_]
                for box, score in detector.faces(np.ascontiguousarray(out)):
                    box = detection._rescale(box, scale)
                    if _exempt(box, sharp_boxes):
                        continue
                    # A blurred head still looks like a head to a detector; it is a face left only
                    # if its detail survived.
                    left = detail_left(box)
                    if left is not None and left <= ratio_max:
                        blurred_hits += 1
                        continue
                    faces_left.append({"frame": index, "box": list(box), "why": "detector",
                                       "score": round(score, 3)})
            if progress and time.monotonic() - last_report > PROGRESS_INTERVAL:
                progress(min(99, 100 * frames // max(1, expected_frames)))
                last_report = time.monotonic()
    frames_left = sorted({f["frame"] for f in faces_left})
    return {
        "passed": not faces_left, "frames": frames, "detector_frames": detector_frames,
        "boxes_measured": boxes_measured, "blurred_faces_seen": blurred_hits,
        "faces_left": faces_left[:2000], "frames_left": frames_left,
        "ranges": _ranges(frames_left), "detector": detector.name, "threshold": threshold,
        "detail_ratio_max": ratio_max, "width": width,
    }


def _ranges(frames: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for f in frames:
        if out and f <= out[-1][1] + 1:
            out[-1][1] = f
        else:
            out.append([f, f])
    return out
