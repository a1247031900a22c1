"""Raw frame pipes for redaction: ffmpeg decoding a video to numpy-ready bytes and encoding the
blurred frames back to H.264/AAC with the sound removed or muted, each pipe killed at its deadline.
The original is only read (CSI R241-11 V: it is never modified); the command lines are built here
and in ffmpeg.py only.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import ffmpeg
from django.conf import settings

# The runners with their deadlines, shared by the modules of integrations/ that call ffmpeg.
from .ffmpeg import MediaError, ffprobe_json, probe, run_ffmpeg, thread_options


def video_rate(path: str | Path) -> tuple[str, float, int | None]:
    """The first video stream's frame rate as ffmpeg writes it ("30000/1001"), as a float, and
    its frame count when the container states it."""
    data = ffprobe_json(path, "-select_streams", "v:0")
    streams = data.get("streams") or []
    if not streams:
        raise MediaError("no video stream in this file")
    s = streams[0]
    rate = s.get("avg_frame_rate") or "0/0"
    if rate in ("0/0", "0/1"):
        rate = s.get("r_frame_rate") or "25/1"
    num, _, den = rate.partition("/")
    fps = float(num) / float(den or 1) if float(den or 1) else 25.0
    try:
        count = int(s["nb_frames"])
    except (KeyError, ValueError):
        count = None
    return rate, fps, count


class _Deadline:
    """Kills a piped ffmpeg still running after ``timeout`` seconds (default: the task time limit),
    as ``run_ffmpeg`` does for the others: a stuck decoder must not hold a worker forever."""

    def __init__(self, proc: subprocess.Popen, timeout: float | None):
        import threading

        self.timeout = timeout or settings.TEMOIN_TASK_TIME_LIMIT
        self.expired = False
        self._timer = threading.Timer(self.timeout, self._expire, args=(proc,))
        self._timer.daemon = True
        self._timer.start()

    def _expire(self, proc: subprocess.Popen) -> None:
        self.expired = True
        proc.kill()

    def cancel(self) -> None:
        self._timer.cancel()

    def explain(self, message: str) -> str:
        return f"ffmpeg took longer than {self.timeout:.0f} s" if self.expired else message


class RawVideoReader:
    """Frames of a video as raw bytes (``pix_fmt``), read from an ffmpeg pipe.

    Iterate to get ``(frame_index, bytes)``; the index counts frames of the source, so that with
    ``every=N`` the indexes are 0, N, 2N…  Used as a context manager: leaving it stops ffmpeg and
    raises MediaError if ffmpeg failed before the end.
    """

    def __init__(self, args: list[str], *, width: int, height: int, channels: float, every: int,
                 timeout: float | None = None):
        import tempfile

        self.args, self.width, self.height, self.every = args, width, height, every
        self.frame_size = int(width * height * channels)
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
                                     bufsize=self.frame_size * 2)
        self._deadline = _Deadline(self.proc, timeout)
        self.complete = False

    def __iter__(self):
        n = 0
        while True:
            data = self.proc.stdout.read(self.frame_size)
            if len(data) < self.frame_size:
                self.complete = True
                return
            yield n * self.every, data
            n += 1

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.complete:
            self.proc.kill()
        self.proc.stdout.close()
        code = self.proc.wait()
        self._deadline.cancel()
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-5:]
        self._stderr.close()
        if exc_type is None and self.complete and code != 0:
            raise MediaError(self._deadline.explain(f"ffmpeg failed while decoding (exit {code})"), "\n".join(tail))
        return False


def raw_video_reader(src: str | Path, *, width: int | None = None, every: int = 1,
                     pix_fmt: str = "bgr24", deblock: bool = True) -> RawVideoReader:
    """Decode ``src`` to raw frames, optionally scaled to ``width`` (height keeps the aspect,
    even) and keeping one frame in ``every`` (the others are decoded but not converted or piped).

    ``pix_fmt``: bgr24 (OpenCV's order), rgb24, gray, or yuv420p (planar, no colour conversion:
    the cheapest for a decode → edit → encode pipe).
    ``deblock=False``: the decoder skips its loop filter (``-skip_loop_filter all``), a quarter
    of an H.264 decode's time; the frames differ from the clip's by the block edges the filter
    smooths, which a downscale to the detection size averages away. For the redaction analysis
    only: what is rendered or compared is decoded whole.
    """
    info = probe(src)
    w, h = info.width, info.height
    if not w or not h:
        raise MediaError("the video stream has no size")
    stream = ffmpeg.input(str(src), **({} if deblock else {"skip_loop_filter": "all"}))["v:0"]
    if every > 1:
        stream = stream.filter("select", f"not(mod(n,{int(every)}))")
    if width and width != w:
        h = int(round(h * width / w / 2)) * 2
        w = width
        stream = stream.filter("scale", w, h, flags="area")
    channels = {"bgr24": 3, "rgb24": 3, "gray": 1, "yuv420p": 1.5}[pix_fmt]
    if pix_fmt == "yuv420p" and (w % 2 or h % 2):
        raise MediaError("yuv420p frames need an even width and height")
    args = (ffmpeg.output(stream, "pipe:", f="rawvideo", pix_fmt=pix_fmt, fps_mode="passthrough", **thread_options())
            .global_args("-nostdin", "-v", "error").compile())
    return RawVideoReader(args, width=w, height=h, channels=channels, every=max(1, int(every)))


class RawVideoWriter:
    """Feeds raw frames to an ffmpeg encoder; ``close()`` waits for it and raises on failure."""

    def __init__(self, args: list[str], *, timeout: float | None = None):
        import tempfile

        self.args = args
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self._deadline = _Deadline(self.proc, timeout)
        self.frames = 0

    def write(self, frame: bytes) -> None:
        try:
            self.proc.stdin.write(frame)
        except BrokenPipeError as exc:
            self.close()
            raise MediaError("ffmpeg stopped while encoding") from exc
        self.frames += 1

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        code = self.proc.wait()
        self._deadline.cancel()
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-5:]
        self._stderr.close()
        if code != 0:
            raise MediaError(self._deadline.explain(f"ffmpeg failed while encoding (exit {code})"), "\n".join(tail))

    def abort(self) -> None:
        self.proc.kill()
        try:
            self.close()
        except MediaError:
            pass


def _mute_expression(mute_ranges: list[tuple[float, float]]) -> str:
    return "+".join(f"between(t,{float(a):.3f},{float(b):.3f})" for a, b in mute_ranges)


def redacted_writer(dst: str | Path, *, audio_src: str | Path | None, width: int, height: int, rate: str,
                    mute_ranges: list[tuple[float, float]] = (), preset: str = "veryfast",
                    crf: int = 20, pix_fmt: str = "yuv420p") -> RawVideoWriter:
    """Encode raw frames (``pix_fmt``) from a pipe to an H.264/AAC MP4 (index first), with the
    audio of ``audio_src`` (None: no audio) silenced over ``mute_ranges`` (seconds)."""
    video = ffmpeg.input("pipe:", f="rawvideo", pix_fmt=pix_fmt, s=f"{width}x{height}", framerate=rate)
    streams = [video]
    opts = dict(vcodec="libx264", preset=preset, crf=crf, pix_fmt="yuv420p", movflags="+faststart", f="mp4",
                **thread_options())
    if audio_src is not None:
        audio = ffmpeg.input(str(audio_src))["a:0"]
        if mute_ranges:
            audio = audio.filter("volume", volume=0, enable=_mute_expression(mute_ranges))
        streams.append(audio)
        opts.update(acodec="aac", audio_bitrate="128k")
    args = (ffmpeg.output(*streams, str(dst), **opts).global_args("-nostdin", "-v", "error")
            .overwrite_output().compile())
    return RawVideoWriter(args)


def transcode_reference(src: str | Path, dst: str | Path, *, preset: str = "veryfast", crf: int = 20) -> list[str]:
    """Bare decode → H.264/AAC encode of ``src`` with the same settings as a redacted render
    (the physical baseline that bench/redaction.py compares redaction with)."""
    inp = ffmpeg.input(str(src))
    args = (ffmpeg.output(inp["v:0"], inp["a:0?"], str(dst), vcodec="libx264", preset=preset, crf=crf,
                          pix_fmt="yuv420p", acodec="aac", audio_bitrate="128k", movflags="+faststart", f="mp4",
                          **thread_options())
            .global_args("-nostdin", "-v", "error").overwrite_output().compile())
    run_ffmpeg(args, timeout=3600)
    return args
