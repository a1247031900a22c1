"""The one place that builds ffmpeg / ffprobe command lines (with ffmpeg-python) and runs them, with
rawvideo.py (the raw frame pipes of redaction): probes, playback copies, posters, stream hashes,
still frames, and the sample clips of tests and benchmarks."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import ffmpeg
from django.conf import settings

# ffprobe reads a container's index, not the whole file: a probe that takes minutes is a program
# stuck on a hostile or damaged file, and it must not hold a worker until the task time limit.
PROBE_TIMEOUT = 120

BROWSER_VIDEO = {"h264"}
BROWSER_AUDIO = {"aac", "mp3"}
BROWSER_CONTAINERS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}


class MediaError(Exception):
    """ffmpeg or ffprobe could not read or write the media; ``detail`` has its last words."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


@dataclass
class MediaInfo:
    format_name: str = ""
    duration: float | None = None
    creation_time: dt.datetime | None = None
    video_codec: str = ""
    pix_fmt: str = ""
    width: int | None = None
    height: int | None = None
    audio_codec: str = ""
    streams: list = field(default_factory=list)

    @property
    def browser_ready(self) -> bool:
        """True when a remux (no re-encoding) gives a copy Chromium plays: H.264 4:2:0 + AAC."""
        containers = set(self.format_name.split(","))
        return (
            bool(containers & BROWSER_CONTAINERS)
            and self.video_codec in BROWSER_VIDEO
            and self.pix_fmt in ("yuv420p", "yuvj420p")
            and (not self.audio_codec or self.audio_codec in BROWSER_AUDIO)
        )

    def as_dict(self) -> dict:
        return {
            "format_name": self.format_name,
            "duration": self.duration,
            "creation_time": self.creation_time.isoformat() if self.creation_time else None,
            "video_codec": self.video_codec,
            "pix_fmt": self.pix_fmt,
            "width": self.width,
            "height": self.height,
            "audio_codec": self.audio_codec,
            "streams": self.streams,
        }


def run_ffmpeg(args: list[str], *, timeout: float | None = None) -> subprocess.CompletedProcess:
    timeout = timeout or settings.TEMOIN_TASK_TIME_LIMIT
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{args[0]} took longer than {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise MediaError(f"{args[0]} failed (exit {proc.returncode})", "\n".join(tail))
    return proc


def thread_options() -> dict:
    n = settings.TEMOIN_FFMPEG_THREADS
    return {"threads": n} if n else {}


def ffprobe_json(path: str | Path, *options: str) -> dict:
    """ffprobe's JSON for ``path`` (what ``ffmpeg.probe`` does, with a timeout)."""
    args = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", *options, str(path)]
    try:
        proc = run_ffmpeg(args, timeout=PROBE_TIMEOUT)
    except MediaError as exc:
        raise MediaError(f"ffprobe cannot read this file ({exc})", exc.detail) from exc
    return json.loads(proc.stdout.decode("utf-8", errors="replace"))


def probe(path: str | Path) -> MediaInfo:
    data = ffprobe_json(path)
    fmt = data.get("format", {})
    info = MediaInfo(format_name=fmt.get("format_name", ""))
    try:
        info.duration = float(fmt["duration"])
    except (KeyError, ValueError):
        pass
    created = (fmt.get("tags") or {}).get("creation_time")
    if created:
        try:
            info.creation_time = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            pass
    for s in data.get("streams", []):
        kind = s.get("codec_type")
        info.streams.append({"index": s.get("index"), "type": kind, "codec": s.get("codec_name", "")})
        if kind == "video" and not info.video_codec and s.get("disposition", {}).get("attached_pic") != 1:
            info.video_codec = s.get("codec_name", "")
            info.pix_fmt = s.get("pix_fmt", "")
            info.width, info.height = s.get("width"), s.get("height")
        elif kind == "audio" and not info.audio_codec:
            info.audio_codec = s.get("codec_name", "")
    if not info.video_codec:
        raise MediaError("no video stream in this file")
    return info



def playback_copy(src: str | Path, dst: str | Path, *, remux: bool, hash_original: bool = False):
    """Write an H.264/AAC MP4 with the index first (+faststart) so that seeking starts at once.

    Remux copies the original's packets untouched (its stream hashes stay equal); otherwise the
    video is transcoded. Returns the command line that was run, for the custody details; with
    ``hash_original``, returns (command, the original's stream hashes) computed in the same pass.
    """
    inp = ffmpeg.input(str(src))
    streams = [inp["v:0"], inp["a:0?"]]
    if remux:
        out = ffmpeg.output(*streams, str(dst), c="copy", movflags="+faststart", f="mp4")
    else:
        out = ffmpeg.output(
            *streams, str(dst), vcodec="libx264", preset="veryfast", crf=23, pix_fmt="yuv420p",
            acodec="aac", audio_bitrate="128k", movflags="+faststart", f="mp4", **thread_options(),
        )
    if hash_original:
        # One read of the original feeds both outputs: the copy and its packets' stream hashes.
        hashes = ffmpeg.output(inp["v"], inp["a?"], "pipe:", c="copy", f="streamhash", hash="sha256")
        out = ffmpeg.merge_outputs(out, hashes)
    args = out.global_args("-nostdin", "-v", "error").overwrite_output().compile()
    proc = run_ffmpeg(args)
    if hash_original:
        return args, _parse_streamhash(proc.stdout.decode())
    return args


def poster(src: str | Path, dst: str | Path, *, at: float = 1.0) -> None:
    """A JPEG still shown before playback starts."""
    args = (
        ffmpeg.input(str(src), ss=at)
        .output(str(dst), vframes=1, vf="scale='min(1280,iw)':-2", f="image2", q=4)
        .global_args("-nostdin", "-v", "error")
        .overwrite_output()
        .compile()
    )
    run_ffmpeg(args, timeout=300)
    if not Path(dst).exists() or Path(dst).stat().st_size == 0:
        if at > 0:
            return poster(src, dst, at=0)
        raise MediaError("no frame could be extracted for the poster")


def stream_hashes(path: str | Path) -> dict[str, str]:
    """SHA-256 of every audio/video stream's packets (``-f streamhash``): unchanged by a remux.

    Keys are "<type>:<n>" (v:0, a:0) so that an original and its remuxed copy compare directly.
    """
    inp = ffmpeg.input(str(path))
    args = (
        ffmpeg.output(inp["v"], inp["a?"], "-", c="copy", f="streamhash", hash="sha256")
        .global_args("-nostdin", "-v", "error")
        .compile()
    )
    return _parse_streamhash(run_ffmpeg(args).stdout.decode())


def _parse_streamhash(out: str) -> dict[str, str]:
    hashes, counters = {}, {}
    for line in out.splitlines():
        # "0,v,SHA256=…"
        parts = line.strip().split(",")
        if len(parts) != 3 or "=" not in parts[2]:
            continue
        kind = parts[1]
        n = counters.get(kind, 0)
        counters[kind] = n + 1
        hashes[f"{kind}:{n}"] = parts[2].split("=", 1)[1].lower()
    return hashes


def decode_check(path: str | Path) -> None:
    """Decode every frame; raises MediaError when the file does not decode cleanly."""
    args = (
        ffmpeg.input(str(path)).output("-", f="null")
        .global_args("-nostdin", "-v", "error", "-xerror").compile()
    )
    run_ffmpeg(args)


def mp4_atom_order(path: str | Path) -> list[str]:
    """Top-level MP4 box types in file order (a faststart file has moov before mdat)."""
    order = []
    with open(path, "rb") as fh:
        while True:
            header = fh.read(8)
            if len(header) < 8:
                return order
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8].decode("latin-1")
            order.append(kind)
            if size == 1:
                size = int.from_bytes(fh.read(8), "big")
                fh.seek(size - 16, 1)
            elif size == 0:
                return order
            else:
                fh.seek(size - 8, 1)


def synthesize_clip(dst: str | Path, *, seconds: float = 2, width: int = 320, height: int = 240,
                    codec: str = "h264", audio: bool = True, faststart: bool = False,
                    creation_time: dt.datetime | None = None, rate: int = 25,
                    preset: str = "veryfast", bitrate: str | None = None) -> Path:
    """Generate a camera-like clip (moving test pattern, tone) for demo data, tests and benchmarks.

    codec: h264 (MP4), hevc (MP4), mjpeg (AVI). By default the index is at the end, as cameras write it.
    """
    dst = Path(dst)
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}", f="lavfi")
    streams = [video]
    if audio:
        streams.append(ffmpeg.input(f"sine=frequency=440:sample_rate=48000:duration={seconds}", f="lavfi"))
    opts: dict = {}
    if codec == "h264":
        opts.update(vcodec="libx264", preset=preset, pix_fmt="yuv420p", f="mp4")
    elif codec == "hevc":
        opts.update(vcodec="libx265", preset="ultrafast", pix_fmt="yuv420p", f="mp4", **{"tag:v": "hvc1"},
                    **{"x265-params": "log-level=error"})
    elif codec == "mjpeg":
        opts.update(vcodec="mjpeg", q=5, pix_fmt="yuvj420p", f="avi")
    else:
        raise ValueError(f"unknown codec {codec}")
    if bitrate:
        opts.update(video_bitrate=bitrate)
    if audio:
        opts.update(acodec="aac" if codec != "mjpeg" else "pcm_s16le")
    if faststart and opts["f"] == "mp4":
        opts["movflags"] = "+faststart"
    if creation_time is not None:
        opts["metadata"] = f"creation_time={creation_time.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
    args = ffmpeg.output(*streams, str(dst), **opts).global_args("-nostdin", "-v", "error").overwrite_output().compile()
    run_ffmpeg(args, timeout=3600)
    return dst


def to_json(info: MediaInfo) -> str:
    return json.dumps(info.as_dict())


def frame_jpeg(src: str | Path, *, at: float, width: int | None = None, quality: int = 3) -> bytes:
    """One frame at ``at`` seconds as JPEG bytes (the redaction editor's background)."""
    stream = ffmpeg.input(str(src), ss=f"{max(0.0, at):.4f}")["v:0"]
    if width:
        stream = stream.filter("scale", width, -2)
    args = (ffmpeg.output(stream, "pipe:", vframes=1, f="image2pipe", vcodec="mjpeg", q=quality)
            .global_args("-nostdin", "-v", "error").compile())
    data = run_ffmpeg(args, timeout=120).stdout
    if not data:
        raise MediaError(f"no frame at {at:.3f} s")
    return data


def frame_jpeg_index(src: str | Path, *, index: int, fps: float, quality: int = 3) -> bytes:
    """Frame number ``index`` (counted from 0 as the redaction render counts them) as JPEG bytes.

    An input seek (-ss before -i) outputs the first frame whose time is at or after the position.
    Frame ``index`` starts at index/fps, so seeking half a frame before it lands on it whatever
    the rounding of the timestamps; seeking to the middle of the frame (the old rule) gave the
    next frame — the editor's frame 0 showed the clip's frame 1.
    """
    return frame_jpeg(src, at=max(0.0, (index - 0.5) / (fps or 25.0)), quality=quality)


def audio_samples(src: str | Path, *, rate: int = 16000) -> bytes:
    """The first audio stream as mono signed 16-bit little-endian samples at ``rate`` Hz."""
    args = (ffmpeg.output(ffmpeg.input(str(src))["a:0"], "pipe:", f="s16le", acodec="pcm_s16le", ac=1, ar=rate)
            .global_args("-nostdin", "-v", "error").compile())
    return run_ffmpeg(args).stdout


def clip_with_audio(video_src: str | Path, dst: str | Path, *, width: int, height: int, rate: int = 25,
                    seconds: float | None = None, loop: bool = False, audio: str = "noise",
                    crf: int = 18) -> Path:
    """A camera-like MP4 (H.264/AAC) made from real footage: ``video_src`` scaled and padded to
    ``width``x``height`` at ``rate`` fps, looped (forwards then backwards) up to ``seconds`` when
    ``loop``, with a steady audio track (pink noise) so that muting can be measured.

    Used by tests and the benchmark to turn small sample footage into the shape cameras record.
    """
    src = ffmpeg.input(str(video_src))["v:0"]
    if loop:
        split = src.filter_multi_output("split")
        src = ffmpeg.concat(split[0], split[1].filter("reverse"), v=1, a=0).filter("loop", loop=-1, size=32767)
    src = (src.filter("fps", rate)
           .filter("scale", width, height, force_original_aspect_ratio="decrease", flags="bicubic")
           .filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2")
           .filter("setsar", 1))
    streams = [src]
    opts: dict = dict(vcodec="libx264", preset="veryfast", crf=crf, pix_fmt="yuv420p", f="mp4", **thread_options())
    if seconds:
        opts["t"] = f"{seconds:.3f}"
    if audio:
        duration = seconds or 3600
        streams.append(ffmpeg.input(f"anoisesrc=color=pink:amplitude=0.3:sample_rate=48000:duration={duration}",
                                    f="lavfi"))
        opts.update(acodec="aac", audio_bitrate="128k", shortest=None)
    args = ffmpeg.output(*streams, str(dst), **opts).global_args("-nostdin", "-v", "error").overwrite_output().compile()
    run_ffmpeg(args, timeout=3600)
    return Path(dst)
