"""The filter model of a search: what a photo must be to be returned, as SQL over the catalog's
`files` and `photos` tables. The nearest-neighbour step searches only the ids that pass (exact
over a small subset, FAISS with an id selector over a large one), so a filter never starves a
result list: when at least k photos pass, k come back.

Dates are the photo's own (`photos.taken_at`: EXIF DateTimeOriginal, else CreateDate, else the
file's mtime), compared as the camera wrote them. A bound may be partial: `after 2019-06` is from
the first moment of June 2019, `before 2019-07` up to the last moment of July 2019, so
`after 2019 before 2019` is the year 2019.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field, fields

from cliplab.errors import QueryError

ORIENTATIONS = ("landscape", "portrait", "square")
_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_TYPE = re.compile(r"[a-z0-9]{1,8}")
_SAME_TYPE = {"jpeg": "jpg", "tif": "tiff", "heif": "heic", "hif": "heic"}


def _period(text: str, what: str) -> tuple[dt.datetime, dt.datetime]:
    """'2019' | '2019-06' | '2019-06-01' → [start, end) of that year, month or day."""
    m = _DATE.fullmatch(str(text).strip())
    if not m:
        raise QueryError(f"--{what} {text!r}: give a date as YYYY, YYYY-MM or YYYY-MM-DD")
    y, mo, d = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)
    try:
        start = dt.datetime(y, mo, d)
    except ValueError as e:
        raise QueryError(f"--{what} {text!r}: {e}") from None
    if m.group(3):
        end = start + dt.timedelta(days=1)
    elif m.group(2):
        end = dt.datetime(y + (mo == 12), mo % 12 + 1, 1)
    else:
        end = dt.datetime(y + 1, 1, 1)
    return start, end


def _types(value) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value or [])
    out = []
    for t in (str(x).strip().lower().lstrip(".") for x in items):
        if not t:
            continue
        if not _TYPE.fullmatch(t):
            raise QueryError(f"--type {t!r}: give file extensions, e.g. jpg,heic,png")
        out.append(_SAME_TYPE.get(t, t))
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class Filters:
    after: str | None = None  # ISO start, inclusive
    before: str | None = None  # ISO end, exclusive
    types: tuple[str, ...] = ()  # file extensions, lower case (jpeg → jpg, heif → heic)
    camera: str | None = None  # substring of "make model", any case
    min_width: int | None = None
    min_height: int | None = None
    orientation: str | None = None
    has_gps: bool = False
    ids: tuple[int, ...] | None = None  # only these catalog ids (a selection on the map); () passes none
    text: dict = field(default_factory=dict, compare=False)  # what the user wrote, for messages

    @property
    def active(self) -> bool:
        return self.ids is not None or any(getattr(self, f.name) for f in fields(self) if f.name not in ("text", "ids"))

    @property
    def needs_photos(self) -> bool:
        """Anything but the file type reads the metadata table."""
        return any(
            (self.after, self.before, self.camera, self.min_width, self.min_height, self.orientation, self.has_gps)
        )

    def sql(self, alias: str = "f", photo: str = "p") -> tuple[str, list]:
        """' AND …' clauses (and their arguments) over files `alias` joined to photos `photo`."""
        who = f"lower(coalesce({photo}.camera_make, '') || ' ' || coalesce({photo}.camera_model, ''))"
        simple = [  # (value, clause with one ? for it)
            (self.after, f"{photo}.taken_at >= ?"),
            (self.before, f"{photo}.taken_at < ?"),
            (self.camera and self.camera.lower(), f"instr({who}, ?) > 0"),
            (self.min_width, f"{photo}.width >= ?"),
            (self.min_height, f"{photo}.height >= ?"),
            (self.orientation, f"{photo}.orientation = ?"),
        ]
        clauses = [c for v, c in simple if v]
        args: list = [v for v, _ in simple if v]
        if self.has_gps:
            clauses.append(f"{photo}.gps_lat IS NOT NULL")
        if self.ids is not None:  # one JSON parameter: SQLite caps bound parameters, a selection can be 100k ids
            clauses.append(f"{alias}.id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps([int(i) for i in self.ids]))
        if self.types:
            exts = [x for t in self.types for x in [t] + [k for k, v in _SAME_TYPE.items() if v == t]]
            clauses.append("(" + " OR ".join([f"lower({alias}.path) GLOB ?"] * len(exts)) + ")")
            args += [f"*.{x}" for x in exts]
        return "".join(f" AND {c}" for c in clauses), args

    def describe(self) -> str:
        """'after 2019, type jpg,heic, camera canon' for headers and 'nothing matches' messages."""
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.text.items())


def make_filters(
    after: str | None = None,
    before: str | None = None,
    types=None,
    camera: str | None = None,
    min_width: int | None = None,
    min_height: int | None = None,
    orientation: str | None = None,
    has_gps: bool = False,
) -> Filters:
    """User values (CLI options, query parameters) → Filters, or QueryError naming the bad one."""
    text: dict = {}
    lo = _period(after, "after")[0] if after else None
    hi = _period(before, "before")[1] if before else None
    if lo and hi and lo >= hi:
        raise QueryError(f"--after {after} is not before --before {before}: no date is in both")
    for name, value in (("min_width", min_width), ("min_height", min_height)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise QueryError(f"--{name.replace('_', '-')} {value!r}: give a whole number of pixels ≥ 1")
    if orientation is not None and orientation not in ORIENTATIONS:
        raise QueryError(f"--orientation {orientation!r}: use {', '.join(ORIENTATIONS)}")
    camera = camera.strip() if camera and camera.strip() else None
    kinds = _types(types)
    given = {"after": after, "before": before, "type": ",".join(kinds), "camera": camera, "min_width": min_width}
    given |= {"min_height": min_height, "orientation": orientation, "has_gps": "yes" if has_gps else None}
    text.update((k, v) for k, v in given.items() if v)
    return Filters(
        after=lo.isoformat() if lo else None,
        before=hi.isoformat() if hi else None,
        types=kinds,
        camera=camera,
        min_width=min_width,
        min_height=min_height,
        orientation=orientation,
        has_gps=bool(has_gps),
        text=text,
    )
