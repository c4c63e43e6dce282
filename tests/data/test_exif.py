"""`data/exif.py`: what a photo says about itself, from its header (PIL's EXIF reader)."""

from __future__ import annotations

import os

import pytest
from PIL import Image
from PIL.ExifTags import GPS, IFD, Base

from cliplab.data.exif import orientation_class, parse_exif_date, read_photo_meta


def save(path, size=(40, 30), fmt=None, **tags):
    exif = Image.Exif()
    sub, gps = exif.get_ifd(IFD.Exif), exif.get_ifd(IFD.GPSInfo)
    for k, v in tags.items():
        if k in ("DateTimeOriginal", "DateTimeDigitized", "OffsetTimeOriginal", "UserComment"):
            sub[getattr(Base, k)] = v
        elif k.startswith("GPS"):
            gps[getattr(GPS, k)] = v
        else:
            exif[getattr(Base, k)] = v
    Image.new("RGB", size, "red").save(path, fmt, exif=exif)
    return path


def test_a_camera_photo(tmp_path):
    p = save(
        tmp_path / "IMG_2041.jpg",
        Make="Canon",
        Model="EOS 5D",
        Orientation=6,
        ImageDescription="Beach day",
        DateTimeOriginal="2019:06:01 14:03:22",
        OffsetTimeOriginal="+02:00",
        GPSLatitudeRef="N",
        GPSLatitude=(52.0, 31.0, 12.0),
        GPSLongitudeRef="W",
        GPSLongitude=(1.0, 30.0, 0.0),
    )
    m = read_photo_meta(p)
    assert (m.taken_at, m.taken_from) == ("2019-06-01T14:03:22+02:00", "DateTimeOriginal")
    assert (m.camera_make, m.camera_model, m.format) == ("Canon", "EOS 5D", "JPEG")
    assert (m.gps_lat, m.gps_lon) == (52.52, -1.5)
    assert (m.width, m.height, m.orientation) == (30, 40, "portrait")  # rotated 90°: as a person sees it
    assert m.file_size == p.stat().st_size and m.text == "Beach day"


def test_dates_fall_back_and_say_from_where(tmp_path):
    m = read_photo_meta(save(tmp_path / "a.jpg", DateTimeDigitized="2018:01:02 03:04:05"))
    assert (m.taken_at, m.taken_from) == ("2018-01-02T03:04:05", "CreateDate")
    m = read_photo_meta(save(tmp_path / "b.jpg", DateTime="2017:05:06 07:08:09"))
    assert (m.taken_at, m.taken_from) == ("2017-05-06T07:08:09", "DateTime")
    p = save(tmp_path / "c.png", size=(20, 20), DateTimeOriginal="0000:00:00 00:00:00")  # unset on the camera
    os.utime(p, (1_500_000_000, 1_500_000_000))
    m = read_photo_meta(p)
    assert m.taken_from == "mtime" and m.taken_at.startswith("2017-07-1") and m.orientation == "square"
    assert (m.gps_lat, m.camera_make, m.text) == (None, None, "")


def test_a_file_pil_cannot_open_keeps_size_and_mtime(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_bytes(b"not an image at all")
    m = read_photo_meta(p)
    assert (m.taken_from, m.format, m.width, m.file_size) == ("mtime", None, None, 19)


def test_nonsense_positions_are_no_position(tmp_path):
    zero = dict(GPSLatitudeRef="N", GPSLatitude=(0.0, 0.0, 0.0), GPSLongitudeRef="E", GPSLongitude=(0.0, 0.0, 0.0))
    assert read_photo_meta(save(tmp_path / "z.jpg", **zero)).gps_lat is None  # 0,0: an unset receiver


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("2019:06:01 14:03:22", "2019-06-01T14:03:22"),
        ("2019-06-01 14:03:22", "2019-06-01T14:03:22"),
        ("2019:06:01", "2019-06-01T00:00:00"),
        ("", None),
        ("garbage", None),
        (b"2020:02:29 00:00:00\x00", "2020-02-29T00:00:00"),
    ],
)
def test_parse_exif_date(raw, want):
    assert parse_exif_date(raw) == want


def test_orientation_class():
    assert [orientation_class(*s) for s in [(4, 3), (3, 4), (5, 5), (0, 5)]] == [
        "landscape",
        "portrait",
        "square",
        None,
    ]
