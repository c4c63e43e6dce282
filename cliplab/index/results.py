"""What collection searches return: ranked hits and groups of near-duplicates."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Hit:
    rank: int
    score: float
    path: str  # absolute
    relpath: str  # relative to the collection's folder
    id: int = -1  # the catalog's stable file id (the server addresses images by it)
    media: str = "image"  # or "video" (index/frames.py)
    timestamp: float | None = None  # a video's best moment, seconds from its start
    moments: list | None = None  # a video's best moments, best first: [{"timestamp": s, "score": cosine}]

    def as_dict(self) -> dict:
        d = asdict(self)
        if self.media != "video":  # an image's hit reads as it always has
            d.pop("timestamp"), d.pop("moments")
        return d


@dataclass
class DuplicateGroup:
    paths: list[str]  # absolute, sorted
    min_score: float  # weakest link that joined the group (groups are connected components)
    max_score: float

    def as_dict(self) -> dict:
        return asdict(self)
