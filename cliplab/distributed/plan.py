"""Cutting a job into shards with deterministic ids, so reruns and retries name the same work.

Each webdataset `.tar` is one shard (its samples in tar order); files from folders, `.txt` lists
and URLs are cut, in input order, into shards of `shard_size`. The same inputs and shard size
always give the same shards, and the plan's digest, stored in the manifest, tells a rerun whether
the output folder holds this job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from cliplab.data.images import list_images
from cliplab.data.shards import is_tar, list_tar
from cliplab.errors import CliplabError

DEFAULT_SHARD_SIZE = 10_000


@dataclass
class ShardSpec:
    id: int
    count: int  # inputs (images or tar samples) in the shard
    tar: str | None = None  # a webdataset shard, listed by the worker
    items: list[str] = field(default_factory=list)  # file paths / URLs otherwise

    @property
    def source(self) -> str:
        return self.tar or (self.items[0] if self.items else "")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ShardSpec:
        return cls(**json.loads(text))


def plan_shards(inputs: Sequence[str], shard_size: int = DEFAULT_SHARD_SIZE) -> list[ShardSpec]:
    """Shards for `inputs` (folders, files, .txt lists, URLs, .tar shards), ids 0, 1, 2, …"""
    if shard_size < 1:
        raise CliplabError("--shard-size must be at least 1")
    specs: list[ShardSpec] = []
    files: list[str] = []

    def flush():
        for i in range(0, len(files), shard_size):
            chunk = files[i : i + shard_size]
            specs.append(ShardSpec(len(specs), len(chunk), items=chunk))
        files.clear()

    for item in inputs:
        expanded = [str(item)] if is_tar(item) and Path(item).expanduser().is_file() else list_images([item])
        for p in expanded:
            if is_tar(p) and not p.startswith(("http://", "https://")):
                flush()
                tar = str(Path(p).expanduser().resolve())
                specs.append(ShardSpec(len(specs), len(list_tar(tar, captions=False)), tar=tar))
            else:
                files.append(p if p.startswith(("http://", "https://")) else str(Path(p).expanduser().absolute()))
    flush()
    if not specs or not sum(s.count for s in specs):
        raise CliplabError(f"no images found in {', '.join(map(str, inputs))}")
    return specs


def plan_digest(specs: Sequence[ShardSpec]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for s in specs:
        h.update(json.dumps([s.id, s.tar, s.items]).encode())
    return h.hexdigest()
