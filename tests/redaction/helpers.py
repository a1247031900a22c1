import contextlib
import hashlib

import numpy as np

from evidence.integrations import ffmpeg
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
    reader = ffmpeg.raw_video_reader(path, pix_fmt="bgr24")
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
