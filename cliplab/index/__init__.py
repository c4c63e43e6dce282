"""Collections: an incremental, crash-safe image index with text→image and image→image search.

from cliplab.index import Collection
col = Collection("~/Pictures")            # model: the index's, else "lite"
col.update(progress=True)                 # only new/changed files reach the model
col.search("a dog on the beach", k=10)    # [Hit(rank, score, path, relpath), …]
"""

from cliplab.index.collection import Collection, DuplicateGroup, Hit
from cliplab.index.errors import IndexBusyError, IndexMismatchError, IndexNotFoundError
from cliplab.index.locate import default_index_dir, find_index, index_home
from cliplab.index.sync import SyncStats

__all__ = [
    "Collection",
    "DuplicateGroup",
    "Hit",
    "SyncStats",
    "default_index_dir",
    "find_index",
    "index_home",
    "IndexBusyError",
    "IndexMismatchError",
    "IndexNotFoundError",
]
