"""Moments of a video as pictures: frames sampled with PyAV (FFmpeg inside its wheel), bounded in time and memory.

Sampling is seek-based, so its cost scales with the number of samples, not with the length of the
video: for each sample time the demuxer seeks to the keyframe before it and decodes forward to the
frame at that time. Samples fall every `every` seconds (CLIPLAB_VIDEO_EVERY, default 2 s), spread
out further on long videos so there are at most `cap` (CLIPLAB_VIDEO_FRAMES, default 200).

Scene changes come for free: encoders put a keyframe at a cut (x264's scenecut), and every seek
decodes the keyframe before its sample first. A keyframe met that way which looks unlike the sample
before it (mean difference of 16×16 grey thumbnails) is kept as a moment of its own, so a shot
shorter than `every` is still found.

Limits: the frame size is checked against the one pixel limit (CLIPLAB_MAX_PIXELS) before anything
is decoded; a file that decodes for longer than `budget_s` wall-clock seconds is given up. Frames
are kept small (short side ≤ KEEP_SIDE: the models look at 224–336 px), so 200 frames of a 4K video
cost ~120 MB, not 5 GB. The display matrix of phone videos (`VideoFrame.rotation`) is honoured.
Every failure is an ImageError with the reason, like a photo's.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cliplab.errors import ImageError

BUDGET_S = 120.0  # wall-clock seconds one video may take to sample
KEEP_SIDE = 336  # frames are scaled so their short side is at most this (the largest CLIP input)
MAX_SIDE = 16384  # a stream wider or taller than this is refused as absurd
SCENE_DIFF = 0.12  # mean |Δ| of 16×16 grey thumbnails (0…1) that makes a keyframe a scene change


@dataclass
class Frame:
    t: float  # seconds from the start of the video
    image: Image.Image  # RGB, rotated as it is shown
    scene: bool = False  # kept because it starts a new scene (not on the regular grid)


@dataclass
class VideoInfo:
    duration: float | None  # seconds; None when the container does not say
    width: int  # as shown (after rotation)
    height: int
    format: str  # the container's name: mp4, matroska, avi, …
    codec: str
    created: str | None  # ISO 8601 from the container's creation_time, when it has one
    rotation: int = 0  # degrees, counter-clockwise, from the display matrix


@dataclass
class Sampled:
    info: VideoInfo
    frames: list[Frame] = field(default_factory=list)


def sample_times(duration: float | None, every: float, cap: int) -> list[float]:
    """The regular sample grid: every `every` s, spread so there are at most `cap` samples."""
    if not duration or duration <= 0:
        return [0.0]
    step = max(every, duration / cap)
    n = min(cap, max(1, math.ceil(duration / step - 1e-9)))
    return [round(i * step, 3) for i in range(n)]


def poster_time(duration: float | None, every: float | None = None, cap: int | None = None) -> float:
    """When a video's poster (its own vector and thumbnail) is taken: the regular sample nearest 10 %
    of the video, past a fade-in or a black first frame, but early enough to say what the video is."""
    from cliplab.settings import settings

    s = settings()
    times = sample_times(duration, s.video_every if every is None else every, s.video_frames if cap is None else cap)
    target = (duration or 0.0) * 0.1
    return min(times, key=lambda t: (abs(t - target), t))


def nearest(times: list[float], t: float) -> int:
    """Index of the time in `times` nearest to `t` (the earlier one on a tie)."""
    return min(range(len(times)), key=lambda i: (abs(times[i] - t), times[i]))


def poster(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """A video's poster frame (thumbnails), the one its own vector was taken from (`poster_time`)."""
    return frame_at(path, poster_time(info(path, max_pixels).duration), max_pixels)


def _open(path: str | Path):
    import av

    p = Path(path)
    if not p.exists():
        raise ImageError("file not found")
    if p.stat().st_size == 0:
        raise ImageError("empty file (0 bytes)")
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"video: cannot open ({_why(e)})") from None
    if not container.streams.video:
        container.close()
        raise ImageError("video: no video stream")
    return container


def _why(e: Exception) -> str:
    return (getattr(e, "strerror", None) or str(e) or type(e).__name__).strip()


def _info(container, stream, max_pixels: int) -> VideoInfo:
    cc = stream.codec_context
    w, h = int(cc.width or 0), int(cc.height or 0)
    if w <= 0 or h <= 0 or w > MAX_SIDE or h > MAX_SIDE:
        raise ImageError(f"video: bad frame size {w}x{h}")
    if w * h > max_pixels:
        raise ImageError(f"video frame too large ({w}x{h} > {max_pixels} pixels)")
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # av.time_base: microseconds
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        duration = None
    rotation = _rotation(stream)
    if rotation % 180:
        w, h = h, w
    meta = {**dict(container.metadata), **dict(stream.metadata)}
    return VideoInfo(duration, w, h, container.format.name.split(",")[0], cc.name, _created(meta), rotation)


def _rotation(stream) -> int:
    """Counter-clockwise degrees of the stream's display matrix (phones film portrait as rotated landscape)."""
    rotate = stream.metadata.get("rotate")  # older muxers' tag: clockwise degrees
    if rotate:
        try:
            return -int(float(rotate)) % 360
        except ValueError:
            return 0
    return 0


def _created(meta: dict) -> str | None:
    raw = meta.get("creation_time") or meta.get("date")
    if not raw:
        return None
    s = str(raw).strip().replace("Z", "+00:00")
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    if t.year < 1971:  # 1904/1970 epochs: a camera that never set its clock
        return None
    return t.replace(microsecond=0).isoformat()


def info(path: str | Path, max_pixels: int | None = None) -> VideoInfo:
    """The container's own description of a video (no frame decoded)."""
    import av

    from cliplab.settings import settings

    limit = settings().max_pixels if max_pixels is None else max_pixels
    with _open(path) as container:
        stream = container.streams.video[0]
        vi = _info(container, stream, limit)
        try:  # one frame, for the display matrix (a phone's portrait video)
            _turn(vi, next(container.decode(stream), None))
        except (av.FFmpegError, ValueError, OSError):
            pass
        return vi


def _grey(frame) -> np.ndarray:
    return frame.reformat(16, 16, "gray").to_ndarray().astype(np.float32) / 255.0


def _turn(vi: VideoInfo, frame) -> None:
    """The display matrix (per frame in FFmpeg 7) once known: `vi` says the size as shown."""
    angle = int(getattr(frame, "rotation", 0) or 0) % 360
    if angle and angle != vi.rotation:
        if (angle - vi.rotation) % 180:
            vi.width, vi.height = vi.height, vi.width
        vi.rotation = angle


def _picture(frame, rotation: int) -> Image.Image:
    """The frame as RGB, small (short side ≤ KEEP_SIDE) and turned as it is shown."""
    w, h = frame.width, frame.height
    scale = min(1.0, KEEP_SIDE / max(1, min(w, h)))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = frame.reformat(size[0], size[1], "rgb24").to_image()
    angle = getattr(frame, "rotation", 0) or rotation
    return img.rotate(angle, expand=True) if angle % 360 else img


class _Clock:
    def __init__(self, budget_s: float, name: str):
        self.end, self.budget, self.name = time.monotonic() + budget_s, budget_s, name

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise ImageError(f"video: still decoding after {self.budget:g} s (the limit per file); damaged or endless?")


def sample(
    path: str | Path,
    every: float | None = None,
    cap: int | None = None,
    budget_s: float = BUDGET_S,
    max_pixels: int | None = None,
) -> Sampled:
    """The moments of a video: regular samples plus scene changes, at most `cap`, in time order.
    Raises ImageError with the reason (no video stream, too large, truncated, too slow)."""
    import av

    from cliplab.settings import settings

    s = settings()
    every = s.video_every if every is None else every
    cap = s.video_frames if cap is None else cap
    limit = s.max_pixels if max_pixels is None else max_pixels
    clock = _Clock(budget_s, str(path))
    with _open(path) as container:
        stream = container.streams.video[0]
        vi = _info(container, stream, limit)
        stream.thread_type = "AUTO"
        try:
            if vi.duration is None:
                frames = _sequential(container, stream, vi, every, cap, clock)
            else:
                try:
                    frames = _seeking(container, stream, vi, every, cap, clock)
                except av.FFmpegError:  # a file that cannot seek (an AVI without index): read it in order
                    container.seek(0)
                    frames = _sequential(container, stream, vi, every, cap, clock)
        except av.FFmpegError as e:
            raise ImageError(f"video: corrupt or truncated ({_why(e)})") from None
    if not frames:
        raise ImageError("video: no frame could be decoded (truncated or empty)")
    return Sampled(vi, frames)


def _keyframes(stream, tb: float, start: float) -> list[float]:
    """Keyframe times from the demuxer's index (MP4/MOV have it at open; [] when it is not known)."""
    try:
        return sorted(float(e.timestamp * tb) - start for e in stream.index_entries if e.is_keyframe)
    except (AttributeError, TypeError, ValueError):
        return []


def _seeking(container, stream, vi: VideoInfo, every: float, cap: int, clock: _Clock) -> list[Frame]:
    """Seek to each sample, unless no keyframe lies between the frame decoded last and the sample:
    then decoding on is cheaper than seeking back to the same keyframe (long GOPs)."""
    import bisect

    tb = float(stream.time_base)
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    keys = _keyframes(stream, tb, start)
    out: list[Frame] = []
    seen: set[int] = set()  # pts already taken (a long GOP can bring two seeks to one frame)
    last_grey = None
    frames, pos = None, None  # the decoder's frames and the time of the one decoded last
    grid = sample_times(vi.duration, every, cap)
    probe = max(grid[-1], (vi.duration or 0.0) - 0.05)  # one more look: a cut after the last sample
    for t in grid + [probe]:
        clock.check()
        i = bisect.bisect_right(keys, t + 1e-3)
        key = keys[i - 1] if i else None
        if frames is None or pos is None or key is None or key > pos + 1e-3:
            container.seek(int((start + t) / tb), stream=stream, backward=True, any_frame=False)
            frames = container.decode(stream)
        elif t is probe:
            break  # no keyframe after the last frame decoded: no cut left to find
        for frame in frames:
            clock.check()
            if frame.pts is None:
                continue
            ft = pos = float(frame.pts * tb) - start
            _turn(vi, frame)
            early = ft + 1e-3 < t
            if early and frame.key_frame and last_grey is not None and frame.pts not in seen:
                g = _grey(frame)  # a keyframe between two samples: a cut since the last one?
                if float(np.abs(g - last_grey).mean()) > SCENE_DIFF and len(out) < cap:
                    out.append(Frame(round(max(0.0, ft), 3), _picture(frame, vi.rotation), scene=True))
                    seen.add(frame.pts)
                    last_grey = g
            if t is probe:
                break
            if early:
                continue
            if frame.pts not in seen and len(out) < cap:
                out.append(Frame(round(max(0.0, ft), 3), _picture(frame, vi.rotation)))
                seen.add(frame.pts)
                last_grey = _grey(frame)
            break
    return sorted(out, key=lambda f: f.t)


def _sequential(container, stream, vi: VideoInfo, every: float, cap: int, clock: _Clock) -> list[Frame]:
    """No duration to plan seeks with (some streams): decode in order, keep one frame per `every` s."""
    out: list[Frame] = []
    next_t = 0.0
    for frame in container.decode(stream):
        clock.check()
        _turn(vi, frame)
        if frame.time is None or frame.time + 1e-3 < next_t:
            continue
        out.append(Frame(round(frame.time, 3), _picture(frame, vi.rotation)))
        next_t = frame.time + every
        if len(out) >= cap:
            break
    return out


def frame_at(path: str | Path, t: float, max_pixels: int | None = None, budget_s: float = 30.0) -> Image.Image:
    """The picture at `t` seconds (a poster, a thumbnail of a moment); ImageError when there is none."""
    import av

    from cliplab.settings import settings

    limit = settings().max_pixels if max_pixels is None else max_pixels
    clock = _Clock(budget_s, str(path))
    with _open(path) as container:
        stream = container.streams.video[0]
        vi = _info(container, stream, limit)
        tb = float(stream.time_base)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        last = None
        try:
            container.seek(int((start + max(0.0, t)) / tb), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                clock.check()
                if frame.pts is None:
                    continue
                last = frame
                if float(frame.pts * tb) - start + 1e-3 >= t:
                    break
            if last is None:
                raise ImageError("video: no frame could be decoded (truncated or empty)")
            return _picture(last, vi.rotation)
        except av.FFmpegError as e:
            raise ImageError(f"video: corrupt or truncated ({_why(e)})") from None
