import contextlib
import hashlib

import numpy as np

from evidence.integrations import rawvideo
from evidence.models import Recording
from evidence.redaction import services
from evidence.redaction.models import RedactionJob
from tests.evidence.helpers import run_offload


def offload_clip(make_volume, clip, serial="BWC-0042") -> Recording:
    volume = make_volume(serial, {"DCIM/clip.mp4": clip})
    code, out = run_offload(volume)
    assert code == 0, out
    rec = Recording.objects.get(source_path="DCIM/clip.mp4", camera__serial=serial)
    assert rec.status == Recording.Status.READY, rec.status_message
    return rec


def analysed_job(recording, user, mode="all") -> RedactionJob:
    """Create a job; with eager Celery its analysis runs when the request commits."""
    job = services.redaction_job_create(recording=recording, by=user, mode=mode, motif="Réquisition judiciaire n° 42")
    job.refresh_from_db()
    assert job.status == RedactionJob.Status.REVIEW, job.status_message
    return job


def render(job, user):
    services.redaction_render_request(job=job, by=user)
    job.refresh_from_db()
    assert job.status == RedactionJob.Status.RENDERED, job.status_message
    return job.derivatives.get()


def object_sha256(store, key, version_id="") -> str:
    h = hashlib.sha256()
    with contextlib.closing(store.open(key, version_id)) as fh:
        while data := fh.read(1 << 20):
            h.update(data)
    return h.hexdigest()


def frames(path) -> tuple[list[np.ndarray], int, int]:
    """Every frame of ``path`` as a BGR array."""
    reader = rawvideo.raw_video_reader(path, pix_fmt="bgr24")
    with reader:
        out = [np.frombuffer(data, np.uint8).reshape(reader.height, reader.width, 3) for _, data in reader]
    return out, reader.width, reader.height


def region(frame, box):
    x, y, w, h = box
    return frame[y:y + h, x:x + w]


def sharpness(img) -> float:
    """Variance of the Laplacian: high for detail (a face), near zero once blurred."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def psnr(a, b) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def rms(samples: bytes) -> float:
    data = np.frombuffer(samples, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(data ** 2))) if data.size else 0.0


# --- The labelled set (tests/redaction/data/faces.json) -----------------------------------------

def labelled_clips() -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "data" / "faces.json").read_text())["clips"]


def covered(mask: np.ndarray, box, *, at_least: float = 0.9) -> bool:
    """A labelled face is covered when at least ``at_least`` of its box lies under the blur."""
    x, y, w, h = (int(round(v)) for v in box)
    part = mask[max(0, y):y + h, max(0, x):x + w]
    return part.size > 0 and float(part.mean()) >= at_least


def blur_mask(boxes, width: int, height: int, *, margin: float = 0.2) -> np.ndarray:
    """Where ``blur_region`` changes pixels for these boxes (each widened by ``margin``)."""
    mask = np.zeros((height, width), bool)
    for x, y, w, h in boxes:
        mx, my = int(w * margin), int(h * margin)
        mask[max(0, y - my):y + h + my, max(0, x - mx):x + w + mx] = True
    return mask


def face_frames_covered(faces: dict, boxes: dict, width: int, height: int, *, scale: float = 1.0,
                        shift: tuple = (0, 0)) -> tuple[int, int, list[int]]:
    """(frames whose every labelled face is covered, frames with a face, the frames left uncovered).

    ``faces``: {frame: [[x, y, w, h], …]} in the clip's own pixels; ``scale``/``shift`` map them
    into the analysed video's pixels; ``boxes``: ``render.frame_boxes`` of the analysis."""
    ok, total, missed = 0, 0, []
    for frame, labels in faces.items():
        if not labels:
            continue
        total += 1
        mask = blur_mask(boxes.get(int(frame), []), width, height)
        if all(covered(mask, [b[0] * scale + shift[0], b[1] * scale + shift[1], b[2] * scale, b[3] * scale])
               for b in labels):
            ok += 1
        else:
            missed.append(int(frame))
    return ok, total, sorted(missed)


def watch(derivative, user):
    """``user`` opens a consultation and plays the whole copy, as the job page's player reports it."""
    from evidence.access.services import consultation_open

    consultation, _ = consultation_open(recording=derivative.recording, by=user, motif="Relecture de la copie floutée")
    return services.derivative_watched(derivative=derivative, by=user, consultation=consultation,
                                       played_seconds=derivative.job.duration)


def dpo_on_request(recording, make_user, username="dpo.bernard"):
    """A DPO answering an access request that selected ``recording``: what the DPO sees
    (ARCHITECTURE.md §1, issue 15)."""
    import datetime as dt


    from evidence.disclosure import access_requests

    dpo = make_user(username, role="dpo")
    request = access_requests.access_request_register(
        by=dpo, requester_name="Personne filmée", identity_checked=True, identity_check_method="pièce d'identité",
        received_on=dt.date.today(), description="contrôle")
    access_requests.access_request_select(request=request, by=dpo, recordings=[recording])
    return dpo
