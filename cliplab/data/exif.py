"""What a photo says about itself, read from its header without decoding a pixel: when it was
taken (and from which field), camera, GPS position, size as shown (after EXIF rotation),
orientation class, format, file size, and the EXIF text fields (for keyword search).

PIL's own EXIF reader (`Image.getexif`, nested IFDs through `get_ifd`) does the parsing; HEIC/AVIF
go through pillow-heif's opener when it is registered (`cliplab.data.formats`), RAW photos through
LibRaw (`cliplab.data.raw.raw_header`: the TIFF header's EXIF, or the embedded preview's).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from PIL.ExifTags import GPS, IFD, Base

from cliplab.data.formats import is_video, raw_available
from cliplab.data.raw import is_raw, raw_header
from cliplab.errors import ImageError

ROTATED = {5, 6, 7, 8}  # orientations that swap width and height
TEXT_TAGS = {Base.ImageDescription: "description", Base.Artist: "artist", Base.Copyright: "copyright"}


@dataclass
class PhotoMeta:
    taken_at: str | None  # ISO 8601, local time as the camera wrote it (+offset when recorded)
    taken_from: str  # "DateTimeOriginal" | "CreateDate" | "DateTime" | "creation_time" (a video's) | "mtime"
    camera_make: str | None
    camera_model: str | None
    gps_lat: float | None
    gps_lon: float | None
    width: int | None  # as a person sees it: after EXIF rotation
    height: int | None
    orientation: str | None  # landscape | portrait | square
    format: str | None  # PIL's name: JPEG, PNG, HEIF, WEBP, …
    file_size: int
    text: str  # EXIF description, artist, copyright, user comment: words for the keyword index

    def as_dict(self) -> dict:
        return asdict(self)


def _clean(v) -> str | None:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if v is None:
        return None
    s = str(v).replace("\x00", "").strip()
    return s or None


def parse_exif_date(raw, offset=None) -> str | None:
    """'2019:06:01 14:03:22' (+ '+02:00') → '2019-06-01T14:03:22+02:00'; None for blanks and nonsense."""
    s = _clean(raw)
    if not s:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y:%m:%d"):
        try:
            t = dt.datetime.strptime(s[: len(dt.datetime(2000, 1, 1).strftime(fmt))], fmt)
            break
        except ValueError:
            continue
    else:
        return None
    if t.year < 1800:  # "0000:00:00 00:00:00" and friends: unset on the camera
        return None
    out = t.isoformat()
    off = _clean(offset)
    if off and len(off) == 6 and off[0] in "+-" and off[3] == ":":
        out += off
    return out


def _degrees(value, ref) -> float | None:
    try:
        d, m, s = (float(x) for x in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60 + s / 3600
    if not math.isfinite(deg):
        return None
    return round(-deg if _clean(ref) in ("S", "W") else deg, 7)


def _gps(exif) -> tuple[float | None, float | None]:
    try:
        g = exif.get_ifd(IFD.GPSInfo)
    except Exception:  # noqa: BLE001 a malformed GPS block is simply no position
        return None, None
    lat = _degrees(g.get(GPS.GPSLatitude), g.get(GPS.GPSLatitudeRef))
    lon = _degrees(g.get(GPS.GPSLongitude), g.get(GPS.GPSLongitudeRef))
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
        return None, None
    return lat, lon


def orientation_class(width: int | None, height: int | None) -> str | None:
    if not width or not height:
        return None
    return "square" if width == height else ("landscape" if width > height else "portrait")


def read_photo_meta(path: str | Path) -> PhotoMeta:
    """Everything above for one file; a file PIL cannot open still gets its mtime and size."""
    path = Path(path)
    st = path.stat()
    mtime = dt.datetime.fromtimestamp(st.st_mtime).replace(microsecond=0).isoformat()
    blank = PhotoMeta(mtime, "mtime", None, None, None, None, None, None, None, None, st.st_size, "")
    if is_video(path):
        return _video_meta(path, blank)
    try:
        if is_raw(path) and raw_available():  # LibRaw knows the size; EXIF from the TIFF header or the preview
            fmt, (w, h), exif = raw_header(path)
        else:
            with Image.open(path) as im:
                fmt, (w, h) = im.format, im.size
                exif = im.getexif()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, ImageError):
        return blank
    sub = exif.get_ifd(IFD.Exif) if exif else {}
    taken, source = None, "mtime"
    for tag, name, offset in (
        (Base.DateTimeOriginal, "DateTimeOriginal", Base.OffsetTimeOriginal),
        (Base.DateTimeDigitized, "CreateDate", Base.OffsetTimeDigitized),
    ):
        taken = parse_exif_date(sub.get(tag), sub.get(offset))
        if taken:
            source = name
            break
    if not taken and (taken := parse_exif_date(exif.get(Base.DateTime), sub.get(Base.OffsetTime))):
        source = "DateTime"
    if exif.get(Base.Orientation) in ROTATED:
        w, h = h, w
    lat, lon = _gps(exif) if exif else (None, None)
    words = [_clean(exif.get(tag)) for tag in TEXT_TAGS] + [_user_comment(_clean(sub.get(Base.UserComment)) or "")]
    return PhotoMeta(
        taken_at=taken or mtime,
        taken_from=source,
        camera_make=_clean(exif.get(Base.Make)),
        camera_model=_clean(exif.get(Base.Model)),
        gps_lat=lat,
        gps_lon=lon,
        width=w,
        height=h,
        orientation=orientation_class(w, h),
        format=fmt,
        file_size=st.st_size,
        text=" ".join(x for x in words if x),
    )


def _video_meta(path: Path, blank: PhotoMeta) -> PhotoMeta:
    """A video's container says when it was made (creation_time, UTC as written), its size as shown and format."""
    from cliplab.data.video import info
    from cliplab.errors import ImageError

    try:
        vi = info(path, max_pixels=1 << 62)  # metadata only: the size limit is the sampler's business
    except (ImageError, ImportError):
        return blank
    blank.taken_at, blank.taken_from = (vi.created, "creation_time") if vi.created else (blank.taken_at, "mtime")
    blank.width, blank.height, blank.orientation = vi.width, vi.height, orientation_class(vi.width, vi.height)
    blank.format = path.suffix.lstrip(".").upper() or vi.format
    return blank


def _user_comment(s: str) -> str:
    """EXIF UserComment starts with an 8-byte charset marker ('ASCII\\0\\0\\0', 'UNICODE\\0')."""
    for marker in ("ASCII", "UNICODE", "JIS"):
        if s.startswith(marker):
            return s[len(marker) :].strip()
    return s
