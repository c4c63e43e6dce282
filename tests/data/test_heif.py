"""HEIC/HEIF and AVIF: real files written by pillow-heif / Pillow, with an EXIF rotation tag and a
DateTimeOriginal, through load_image, classify, embed, index + search; RAW/video and missing readers
are skipped with a reason, never silently; every format honours the pixel limit before decoding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from cliplab.data import formats
from cliplab.data.images import list_images, load_image
from cliplab.errors import ImageError

DATE = "2024:05:06 07:08:09"


def save_rotated(photo: Image.Image, path: Path) -> Path:
    """Store the photo turned on its side with EXIF orientation 6 ("rotate 90° CW to show"), so only
    a reader that honours the tag shows it upright; with a DateTimeOriginal."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8769] = {0x9003: DATE}
    photo.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif.tobytes(), quality=90)
    return path


@pytest.fixture(scope="module")
def photo(shared) -> Image.Image:
    return load_image(sorted((shared / "data" / "imagenet-samples" / "images").glob("*.jpg"))[3])


@pytest.fixture(scope="module")
def pics(photo, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("heif")
    for ext in (".heic", ".heif", ".hif", ".avif", ".jpg"):
        save_rotated(photo, d / f"photo{ext}")
    return d


@pytest.mark.parametrize("ext", [".heic", ".heif", ".hif", ".avif"])
def test_heif_avif_decode_upright_with_exif_date(pics, photo, ext, lite_encoder):
    p = pics / f"photo{ext}"
    got = load_image(p)
    assert got.size == photo.size  # upright: the orientation tag was honoured
    diff = np.abs(np.asarray(got, np.float32) - np.asarray(photo, np.float32)).mean()
    assert diff < 6, f"mean |diff| {diff:.1f}"
    with Image.open(p) as im:
        assert im.getexif().get_ifd(0x8769)[0x9003] == DATE
    a, b = lite_encoder.encode_images([got, photo])
    assert float(a @ b) >= 0.99


@pytest.mark.parametrize("ext", [".heic", ".avif"])
def test_pixel_limit_checked_from_the_header(pics, photo, ext, monkeypatch):
    """Too large is refused before any pixel is decoded (load would raise otherwise)."""

    def no_decode(self, *a, **k):
        raise AssertionError("pixels decoded before the size check")

    with Image.open(pics / f"photo{ext}") as im:
        cls = type(im)
    monkeypatch.setattr(cls, "load", no_decode)
    with pytest.raises(ImageError, match="too large"):
        load_image(pics / f"photo{ext}", max_pixels=photo.width * photo.height - 1)


def test_listing_includes_heif_avif_and_reports_raw_video(pics, tmp_path):
    d = tmp_path / "mixed"
    shutil.copytree(pics, d)
    (d / "IMG_0001.CR2").write_bytes(b"II*\0 raw")
    (d / "clip.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    (d / "notes.xmp").write_text("<x/>")
    names = {Path(p).name for p in list_images([d])}
    assert names == {f"photo{e}" for e in (".heic", ".heif", ".hif", ".avif", ".jpg")} | {"IMG_0001.CR2", "clip.mp4"}
    with pytest.raises(ImageError, match=r"^corrupt or unsupported RAW photo \(.+\)$"):  # read, and found broken
        load_image(d / "IMG_0001.CR2")
    with pytest.raises(ImageError, match=r"^video: not one picture, index its folder to search its moments \(\.mp4\)$"):
        load_image(d / "clip.mp4")


def test_missing_reader_is_named(pics, monkeypatch):
    """HEIC without pillow-heif (or AVIF without Pillow's reader) says what to install."""
    data = (pics / "photo.heic").read_bytes()
    monkeypatch.setattr(formats, "register_heif", lambda: False)
    assert formats.unread_reason("x.bin", data[:16]) == formats.HEIF_HINT  # by content, whatever the name
    assert formats.unread_reason("x.heic", b"") == formats.HEIF_HINT
    monkeypatch.setattr(formats, "avif_available", lambda: False)
    assert formats.unread_reason(None, (pics / "photo.avif").read_bytes()[:16]) == formats.AVIF_HINT
    assert formats.unread_reason("x.txt", b"hello") == "not an image (unrecognised format)"


def test_embed_and_classify_heic(pics, lite_encoder):
    import cliplab

    res = cliplab.embed([str(pics / "photo.heic"), str(pics / "photo.jpg")], lite_encoder)
    assert res.status == ["ok", "ok"]
    assert float(res.vectors[0] @ res.vectors[1]) >= 0.99
    c = cliplab.classify(
        [str(pics / "photo.heic"), str(pics / "photo.jpg")], "goldfish,tabby cat,sports car", lite_encoder
    )
    top = c.top(1)
    assert top[0]["status"] == "ok" and top[0]["predictions"][0]["label"] == top[1]["predictions"][0]["label"]


def test_classify_cli_heic_and_skipped_kinds(pics, tmp_path, lite_encoder):
    from cliplab.cli import app

    d = tmp_path / "cli"
    d.mkdir()
    shutil.copy(pics / "photo.heic", d / "photo.heic")
    (d / "clip.mp4").write_bytes(b"movie")
    (d / "trip.mov").write_bytes(b"movie")
    (d / "IMG_1.CR3").write_bytes(b"raw")
    r = CliRunner().invoke(app, ["classify", str(d), "--labels", "goldfish,sports car", "--json"])
    assert r.exit_code == 0, r.output
    rows = {Path(x["path"]).name: x for x in json.loads(r.stdout)["results"]}
    assert rows["photo.heic"]["status"] == "ok" and rows["photo.heic"]["predictions"]
    assert rows["clip.mp4"]["error"] == "video: not one picture, index its folder to search its moments (.mp4)"
    assert rows["IMG_1.CR3"]["error"].startswith("corrupt or unsupported RAW photo (")
    r = CliRunner().invoke(app, ["classify", str(d), "--labels", "goldfish,sports car", "--format", "tsv"])
    assert r.exit_code == 0
    assert (
        "skipped: 2 × video: not one picture, index its folder to search its moments, 1 × corrupt or unsupported RAW photo"
        in r.stderr
    )


def test_formats_command():
    from cliplab.cli import app

    r = CliRunner().invoke(app, ["formats", "--json"])
    assert r.exit_code == 0, r.output
    f = json.loads(r.stdout)
    readable = {x["format"]: x for x in f["readable"]}
    assert {".heic", ".heif", ".hif"} <= set(readable["HEIF"]["extensions"]) and readable["HEIF"]["listed_in_folders"]
    assert ".avif" in readable["AVIF"]["extensions"] and ".jpg" in readable["JPEG"]["extensions"]
    assert "BUFR" not in readable  # identified by PIL but not decodable without a plug-in
    missing = {x["format"]: x for x in f["not_readable"]}
    assert (
        "RAW" not in missing and ".cr2" in readable["RAW"]["extensions"]
    )  # rawpy is installed here (tests/data/test_raw.py)
    table = CliRunner().invoke(app, ["formats"])
    assert table.exit_code == 0 and "HEIF" in table.stdout and "RAW" in table.stdout


def test_index_and_search_heic(pics, tmp_path, monkeypatch, lite_encoder):
    from cliplab.index import Collection

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    d = tmp_path / "lib"
    d.mkdir()
    for name in ("photo.heic", "photo.avif"):
        shutil.copy(pics / name, d / name)
    (d / "IMG_0002.NEF").write_bytes(b"raw")
    (d / "movie.MOV").write_bytes(b"movie")
    (d / "other.jpg").write_bytes(b"")  # a failed image, for the count
    col = Collection(d, encoder=lite_encoder)
    s = col.update()
    assert (s.scanned, s.embedded, s.failed) == (5, 2, 3)
    st = col.status()
    assert (st["indexed"], st["failed"]) == (2, 3)
    assert st["failure_reasons"] == {
        "corrupt or unsupported RAW photo": 1,  # grouped by kind; LibRaw's words are in each file's reason
        "video: cannot open": 1,  # b"movie" is not a video
        "empty file": 1,
    }
    hits = col.search_image(pics / "photo.jpg", k=2)  # its JPEG twin, outside the folder
    assert {h.relpath for h in hits} == {"photo.heic", "photo.avif"} and hits[0].score >= 0.99


def test_decode_timing_is_reported(photo, tmp_path):
    """Not a speed test: both decode, and the HEIC is no slower than 50× the JPEG (a broken decoder path)."""
    import time

    big = photo.resize((1000, 750))
    big.save(j := tmp_path / "a.jpg", quality=90)
    big.save(h := tmp_path / "a.heic", quality=90)
    times = {}
    for p in (j, h):
        load_image(p)
        t = time.perf_counter()
        for _ in range(5):
            load_image(p)
        times[p.suffix] = (time.perf_counter() - t) / 5
    assert times[".heic"] < 50 * times[".jpg"] + 0.05
    assert ImageOps.exif_transpose(Image.open(h)).size == (1000, 750)


def test_heic_and_avif_members_of_a_webdataset_shard(pics, photo, tmp_path):
    """A .heic/.avif member of a tar shard is read like a .jpg member: by offset, upright, with its caption."""
    import tarfile

    shard = tmp_path / "shard-000.tar"
    with tarfile.open(shard, "w") as tf:
        for key, name in (("000", "photo.heic"), ("001", "photo.avif"), ("002", "photo.jpg")):
            tf.add(pics / name, arcname=f"{key}.{name.split('.')[1]}")
        caption = tmp_path / "000.txt"
        caption.write_text("a fish in a tank")
        tf.add(caption, arcname="000.txt")
    items = list_images([shard])
    assert [i.key for i in items] == ["000", "001", "002"] and all(i.size > 0 for i in items)
    assert items[0].caption == "a fish in a tank"
    ref = load_image(items[2])
    for item in items[:2]:
        got = load_image(item)
        assert got.size == photo.size == ref.size  # EXIF rotation honoured from bytes too
        assert np.abs(np.asarray(got, np.float32) - np.asarray(ref, np.float32)).mean() < 6


def test_heic_thumbnail_used_when_at_least_the_input_size(photo, tmp_path):
    """An iPhone-style HEIC (a 320×240 thumbnail stored beside the picture) gives its thumbnail when
    the caller's input size fits it (the indexer's `draft`), upright; the full picture otherwise."""
    big = photo.resize((1280, 960))
    exif = Image.Exif()
    exif[0x0112] = 6
    big.transpose(Image.Transpose.ROTATE_90).save(
        p := tmp_path / "IMG_0001.HEIC", thumbnails=[320], exif=exif.tobytes()
    )
    assert load_image(p, draft=224).size == (320, 240)  # the thumbnail, turned upright
    assert load_image(p, draft=300).size == (1280, 960)  # 240 < 300: the full picture
    assert load_image(p).size == (1280, 960)  # no input size given: never the thumbnail
    small, full = load_image(p, draft=224), load_image(p).resize((320, 240))
    assert np.abs(np.asarray(small, np.float32) - np.asarray(full, np.float32)).mean() < 6
