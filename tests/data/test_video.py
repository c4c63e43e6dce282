"""Video frames sampled with PyAV (cliplab.data.video) from tiny videos PyAV itself encodes here:
regular samples plus scene changes, the display matrix, the container's date, and every way a
video file can be unusable (a reason, never a hang)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cliplab.data import video
from cliplab.data.exif import read_photo_meta
from cliplab.data.formats import VIDEO_HINT, formats, index_reason
from cliplab.errors import ImageError

DOG, BEACH, PIZZA = "n02099601", "n09428293", "n07873807"  # golden retriever, seashore, pizza (imagenet-samples)
SIZE = (160, 120)


def photo(shared: Path, wnid: str, size=SIZE) -> Image.Image:
    return Image.open(shared / "data" / "imagenet-samples" / "images" / f"{wnid}.jpg").convert("RGB").resize(size)


def make_video(path: Path, pictures, seconds=3.0, fps=4, rotation: int = 0, created: str | None = None) -> Path:
    """`seconds` of each picture in turn (H.264 in MP4, or whatever the suffix asks), made with PyAV."""
    import av

    with av.open(str(path), "w") as c:
        if created:
            c.metadata["creation_time"] = created
        codec = {".webm": "libvpx-vp9", ".avi": "mpeg4"}.get(path.suffix, "libx264")
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = pictures[0].width, pictures[0].height, "yuv420p"
        if rotation:
            s.set_display_rotation(rotation)
        for im in pictures:
            for _ in range(round(seconds * fps)):
                for p in s.encode(av.VideoFrame.from_image(im)):
                    c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture
def clip(shared, tmp_path):
    """3 s of a dog, then 3 s of a beach: 160×120, 4 fps."""
    return make_video(tmp_path / "clip.mp4", [photo(shared, DOG), photo(shared, BEACH)])


def near(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference (0…255) after bringing both to one size."""
    return float(np.abs(np.asarray(a.resize(SIZE), np.float32) - np.asarray(b.resize(SIZE), np.float32)).mean())


def test_samples_every_n_seconds_and_each_segment(clip, shared):
    got = video.sample(clip, every=2, cap=200)
    assert got.info.width == 160 and got.info.height == 120 and got.info.codec == "h264"
    assert got.info.duration == pytest.approx(6.0, abs=0.3)
    times = [f.t for f in got.frames]
    assert times == sorted(times) and {0.0, 2.0, 4.0} <= set(times)
    dog, beach = photo(shared, DOG), photo(shared, BEACH)
    for f in got.frames:  # each frame shows what the video shows at its time
        want, other = (dog, beach) if f.t < 3 else (beach, dog)
        assert near(f.image, want) < near(f.image, other), f.t
        assert f.image.mode == "RGB" and f.image.size == SIZE


def test_a_scene_change_between_samples_is_kept(clip):
    """Every 10 s would sample only t=0 of a 6 s video; the cut at 3 s (a keyframe) is kept too."""
    got = video.sample(clip, every=10, cap=200)
    assert [f.t for f in got.frames][0] == 0.0
    scenes = [f for f in got.frames if f.scene]
    assert len(scenes) == 1 and scenes[0].t == pytest.approx(3.0, abs=0.3)


def test_cap_spreads_samples_over_the_whole_video(clip):
    got = video.sample(clip, every=0.25, cap=4)
    times = [f.t for f in got.frames]
    assert len(times) <= 4 and times[-1] >= 3.0  # spread out, not the first second only


def test_sample_times():
    assert video.sample_times(6.0, 2.0, 200) == [0.0, 2.0, 4.0]
    assert len(video.sample_times(3600.0, 2.0, 200)) == 200
    assert video.sample_times(None, 2.0, 200) == [0.0]
    assert video.poster_time(60.0, 2.0, 200) == 6.0


def test_rotation_from_the_display_matrix(shared, tmp_path):
    """A phone films portrait as landscape + a display matrix: frames come out as shown."""
    dog = photo(shared, DOG)
    path = make_video(tmp_path / "phone.mp4", [dog], seconds=1, rotation=90)
    got = video.sample(path)
    assert got.frames[0].image.size == (120, 160) and (got.info.width, got.info.height) == (120, 160)
    assert near(got.frames[0].image, dog.rotate(90, expand=True)) < near(
        got.frames[0].image, dog.rotate(-90, expand=True)
    )


def test_metadata_date_size_format(shared, tmp_path):
    path = make_video(tmp_path / "trip.mp4", [photo(shared, DOG)], seconds=1, created="2021-07-04T10:20:30.000000Z")
    m = read_photo_meta(path)
    assert (m.taken_at, m.taken_from) == ("2021-07-04T10:20:30+00:00", "creation_time")
    assert (m.width, m.height, m.orientation, m.format) == (160, 120, "landscape", "MP4")
    plain = read_photo_meta(make_video(tmp_path / "plain.mp4", [photo(shared, DOG)], seconds=1))
    assert plain.taken_from == "mtime"


def test_other_containers(shared, tmp_path):
    for name in ("a.webm", "a.mkv", "a.avi"):
        got = video.sample(make_video(tmp_path / name, [photo(shared, DOG), photo(shared, BEACH)], seconds=1, fps=2))
        assert len(got.frames) >= 1, name


def test_poster_and_frame_at(clip, shared):
    assert near(video.frame_at(clip, 4.0), photo(shared, BEACH)) < near(video.frame_at(clip, 4.0), photo(shared, DOG))
    assert video.poster(clip).size == SIZE


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
        (lambda p: p.write_bytes(b"not a video at all " * 50), "video: cannot open"),
        (lambda p: p.write_bytes(p.with_name("clip.mp4").read_bytes()[:3000]), "video: "),
    ],
    ids=["zero-bytes", "garbage", "truncated"],
)
def test_unusable_files_fail_with_a_reason(clip, make, reason):
    bad = clip.with_name("bad.mp4")
    make(bad)
    with pytest.raises(ImageError, match="^" + re.escape(reason)):
        video.sample(bad)


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av

    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for p in list(s.encode(frame)) + list(s.encode()):
            c.mux(p)
    with pytest.raises(ImageError, match="^video: no video stream$"):
        video.sample(path)


def test_frame_size_is_checked_before_decoding(clip):
    with pytest.raises(ImageError, match=r"^video frame too large \(160x120 > 1000 pixels\)$"):
        video.sample(clip, max_pixels=1000)


def test_time_budget(clip):
    with pytest.raises(ImageError, match="still decoding after"):
        video.sample(clip, every=0.25, budget_s=0.0)


def test_formats_and_the_missing_extra(monkeypatch):
    readable = {f["format"]: f for f in formats()["readable"]}
    assert ".mp4" in readable["video"]["extensions"] and readable["video"]["listed_in_folders"]
    assert index_reason("a/clip.MP4") is None
    from cliplab.data import formats as fm

    monkeypatch.setattr(fm, "video_available", lambda: False)
    assert index_reason("clip.mov") == VIDEO_HINT == "video: install cliplab[video] (av)"
    assert {f["format"] for f in fm.formats()["not_readable"]} >= {"video"}
