"""RAW photos through rawpy (LibRaw), on real DNG files written by tests/data/dng.py that LibRaw
decodes: the embedded preview when it is large enough, a half-size demosaic otherwise, EXIF
orientation, the pixel limit from the header, corrupt files, EXIF/date, classify/index/search, the
server's JPEG, and the folder watcher."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cliplab.data import formats, raw
from cliplab.data.exif import read_photo_meta
from cliplab.data.images import list_images, load_image
from cliplab.errors import ImageError
from tests.data.dng import write_dng

# how a picture is stored so that EXIF orientation `o` shows it upright
STORE = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@pytest.fixture(scope="module")
def picture(shared) -> Image.Image:
    """A real photo (the goldfish), 320×240."""
    return load_image(shared / "data" / "imagenet-samples" / "images" / "n01443537.jpg").resize((320, 240))


def marked(im: Image.Image) -> Image.Image:
    """The picture with a pure red top-left block: the camera's preview, told apart from a demosaic."""
    out = im.copy()
    out.paste((255, 0, 0), (0, 0, im.width // 3, im.height // 3))
    return out


def is_marked(im: Image.Image) -> bool:
    r, g, b = im.convert("RGB").getpixel((im.width // 6, im.height // 6))
    return r > 200 and g < 60 and b < 60


def stored(im: Image.Image | None, orientation: int) -> Image.Image | None:
    return im.transpose(STORE[orientation]) if im is not None and STORE[orientation] is not None else im


def make_dng(path: Path, picture, orientation=1, preview=None, **kw) -> Path:
    return write_dng(path, stored(picture, orientation), stored(preview, orientation), orientation=orientation, **kw)


def diff(a: Image.Image, b: Image.Image) -> float:
    b = b.resize(a.size)
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b.convert("RGB"), np.float32)).mean())


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_preview_used_when_at_least_the_input_size(picture, tmp_path, orientation):
    p = make_dng(tmp_path / "IMG.DNG", picture, orientation, preview=marked(picture))
    for draft in (224, None):  # the model's input size, or 224 when the caller does not say
        im = load_image(p, draft=draft)
        assert im.mode == "RGB" and im.size == picture.size  # upright: orientation honoured
        assert is_marked(im) and diff(im, marked(picture)) < 6


def test_big_preview_decoded_at_reduced_scale(picture, tmp_path):
    big = marked(picture.resize((960, 720)))
    p = write_dng(tmp_path / "big.dng", picture.resize((960, 720)), preview=big)
    im = load_image(p, draft=224)
    assert is_marked(im) and im.size == (480, 360)  # JPEG draft: 1/2 scale, never below the input size
    assert load_image(p).size == (960, 720)  # no draft asked: the preview (≥ 224) at full size


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("preview", ["none", "small"])
def test_demosaic_when_no_preview_is_large_enough(picture, tmp_path, orientation, preview):
    small = marked(picture).resize((160, 120)) if preview == "small" else None
    p = make_dng(tmp_path / "IMG.NEF", picture, orientation, preview=small)
    im = load_image(p, draft=224)
    assert not is_marked(im)
    assert im.size == (160, 120)  # half-size demosaic, turned upright by LibRaw
    assert diff(im, picture) < 12


def test_preview_exif_orientation_is_applied_once(picture, tmp_path):
    """A preview that carries its own Orientation tag (as the RAW's header does) is turned once, not twice."""
    exif = Image.Exif()
    exif[0x0112] = 6
    p = make_dng(tmp_path / "x.dng", picture, 6, preview=marked(picture), preview_exif=exif)
    im = load_image(p)
    assert im.size == picture.size and is_marked(im)


class _NoDecode:
    """A RawPy stand-in that has a header but refuses to unpack anything."""

    def __init__(self, real):
        self.real, self.sizes = real, real.sizes

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()

    def extract_thumb(self):
        raise AssertionError("preview decoded before the size check")

    def postprocess(self, *a, **k):
        raise AssertionError("sensor data decoded before the size check")


def test_pixel_limit_checked_from_the_header(picture, tmp_path, monkeypatch):
    p = make_dng(tmp_path / "big.dng", picture, preview=marked(picture))
    real_open = raw._open
    monkeypatch.setattr(raw, "_open", lambda path: _NoDecode(real_open(path)))
    with pytest.raises(ImageError, match=r"^image too large \(320x240 > 76799 pixels\)$"):
        load_image(p, max_pixels=320 * 240 - 1)
    monkeypatch.setenv("CLIPLAB_MAX_PIXELS", "1000")  # the one setting, when no limit is passed
    with pytest.raises(ImageError, match="too large"):
        load_image(p)


def test_corrupt_raw_files_say_why(picture, tmp_path, shared):
    good = make_dng(tmp_path / "good.dng", picture).read_bytes()
    (tmp_path / "cut.dng").write_bytes(good[: len(good) // 2])
    (tmp_path / "head.dng").write_bytes(good[:300])
    (tmp_path / "junk.cr2").write_bytes(b"not a raw file at all " * 20)
    shutil.copy(shared / "data" / "imagenet-samples" / "images" / "n01443537.jpg", tmp_path / "jpeg.arw")
    for name in ("cut.dng", "head.dng", "junk.cr2", "jpeg.arw"):
        with pytest.raises(ImageError, match=r"^corrupt or unsupported RAW photo \(.+\)$"):
            load_image(tmp_path / name)
    (tmp_path / "empty.nef").write_bytes(b"")
    with pytest.raises(ImageError, match=r"^empty file \(0 bytes\)$"):
        load_image(tmp_path / "empty.nef")


def test_without_rawpy_says_what_to_install(picture, tmp_path, monkeypatch):
    p = make_dng(tmp_path / "a.dng", picture)
    monkeypatch.setattr(formats, "raw_available", lambda: False)
    with pytest.raises(ImageError, match=r"^RAW photo: install cliplab\[raw\] \(rawpy\)$"):
        load_image(p)
    f = formats.formats()
    assert {"format": "RAW", "extensions": sorted(formats.RAW_EXTENSIONS), "reason": formats.RAW_HINT} in f[
        "not_readable"
    ]
    assert "RAW" not in {x["format"] for x in f["readable"]}


def test_photo_meta_from_the_raw_header(picture, tmp_path):
    m = read_photo_meta(make_dng(tmp_path / "a.dng", picture, 6))
    assert (m.taken_at, m.taken_from) == ("2023-07-14T10:20:30", "DateTimeOriginal")
    assert (m.camera_make, m.camera_model, m.format) == ("Cliplab", "Test DNG", "DNG")
    assert (m.width, m.height, m.orientation) == (320, 240, "landscape")  # as shown: after the rotation


def test_photo_meta_from_the_preview_when_the_header_has_none(picture, tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "PreviewCam"
    exif[0x8769] = {0x9003: "2021:02:03 04:05:06"}
    p = make_dng(tmp_path / "b.dng", picture, preview=marked(picture), preview_exif=exif, date=None)
    m = read_photo_meta(p)
    assert (m.taken_at, m.taken_from, m.camera_make) == ("2021-02-03T04:05:06", "DateTimeOriginal", "PreviewCam")
    broken = tmp_path / "broken.dng"
    broken.write_bytes(b"II*\0" + b"\xff" * 64)
    assert read_photo_meta(broken).taken_from == "mtime"  # unreadable: mtime and size, never an error


def test_formats_lists_raw_as_readable():
    from cliplab.cli import app

    r = CliRunner().invoke(app, ["formats", "--json"])
    assert r.exit_code == 0, r.output
    f = json.loads(r.stdout)
    readable = {x["format"]: x for x in f["readable"]}
    assert {".dng", ".cr2", ".cr3", ".nef", ".arw"} <= set(readable["RAW"]["extensions"])
    assert readable["RAW"]["listed_in_folders"] and "RAW" not in {x["format"] for x in f["not_readable"]}


@pytest.fixture(scope="module")
def raw_folder(picture, shared, tmp_path_factory) -> Path:
    """A JPEG photo, the same photo as a DNG with a preview (on its side, orientation 6) and as one
    without (demosaiced), and a corrupt RAW."""
    d = tmp_path_factory.mktemp("raw")
    picture.save(d / "twin.jpg", quality=92)
    make_dng(d / "camera.dng", picture, 6, preview=picture)
    make_dng(d / "sensor.NEF", picture, 1)
    (d / "broken.cr2").write_bytes(b"II*\0broken")
    return d


def test_classify_cli_reads_raw(raw_folder, lite_encoder):
    from cliplab.cli import app

    r = CliRunner().invoke(app, ["classify", str(raw_folder), "--labels", "goldfish,sports car,tabby cat", "--json"])
    assert r.exit_code == 0, r.output
    rows = {Path(x["path"]).name: x for x in json.loads(r.stdout)["results"]}
    for name in ("twin.jpg", "camera.dng", "sensor.NEF"):
        assert rows[name]["status"] == "ok" and rows[name]["predictions"][0]["label"] == "goldfish", rows[name]
    assert rows["broken.cr2"]["error"].startswith("corrupt or unsupported RAW photo (")


def test_index_and_search_raw(raw_folder, tmp_path, monkeypatch, lite_encoder):
    from cliplab.index import Collection

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    d = tmp_path / "lib"
    shutil.copytree(raw_folder, d)
    (d / "twin.jpg").unlink()
    assert {Path(p).name for p in list_images([d])} == {"camera.dng", "sensor.NEF", "broken.cr2"}
    col = Collection(d, encoder=lite_encoder)
    s = col.update()
    assert (s.scanned, s.embedded, s.failed) == (3, 2, 1)
    assert col.status()["failure_reasons"] == {"corrupt or unsupported RAW photo": 1}
    hits = col.search_image(raw_folder / "twin.jpg", k=2)
    assert hits[0].relpath == "camera.dng" and hits[0].score >= 0.99  # the preview is the photo
    assert hits[1].relpath == "sensor.NEF" and hits[1].score >= 0.9  # a demosaic: close, not identical
    col.close()


def test_raw_served_as_upright_jpeg(raw_folder, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from cliplab.serve import Settings, create_app, open_state
    from cliplab.serve.query import search
    from tests.serve.conftest import toy_loader

    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    d = tmp_path / "srv"
    d.mkdir()
    shutil.copy(raw_folder / "camera.dng", d / "camera.dng")
    state = open_state([d], model="toy", loader=toy_loader, settings=Settings(allowed_hosts=["testserver"]))
    try:
        with TestClient(create_app(state)) as client:
            hit = search(state.sources["srv"], np.array([0.5, 0.5, 0.5, 1.0], np.float32), 1)[0]
            assert hit.path == "camera.dng"
            full = client.get(f"/image/srv/{hit.id}")
            assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
            assert Image.open(io.BytesIO(full.content)).size == (320, 240)  # upright
            thumb = client.get(f"/thumb/srv/{hit.id}")
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
            assert max(Image.open(io.BytesIO(thumb.content)).size) <= 256
    finally:
        state.close()


def test_watcher_indexes_a_raw_file_that_appears(raw_folder, tmp_path, monkeypatch):
    from cliplab.serve import open_state
    from cliplab.serve.watch import Watcher, _relevant
    from tests.helpers import make_image
    from tests.serve.conftest import toy_loader

    assert _relevant(None, "/p/IMG_0001.CR3") and _relevant(None, "/p/clip.mp4") and not _relevant(None, "/p/a.xmp")
    monkeypatch.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "home"))
    d = tmp_path / "watched"
    make_image(d / "first.jpg", size=(20, 20))
    state = open_state([d], model="toy", loader=toy_loader)
    updates = []
    watcher = Watcher(state, on_update=lambda folder, stats: updates.append(stats), debounce_ms=100)
    watcher.start()
    try:
        time.sleep(0.5)  # let the watcher arm itself
        shutil.copy(raw_folder / "camera.dng", d / "camera.dng")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (updates and updates[-1].embedded):
            time.sleep(0.2)
        assert updates and updates[-1].new == 1 and updates[-1].embedded == 1
    finally:
        watcher.stop()
        state.close()
