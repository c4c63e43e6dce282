"""Collections: an incremental, crash-safe image index with text→image and image→image search.

from cliplab.index import Collection
col = Collection("~/Pictures")            # the folder's index (one per model; default lite)
Collection("~/Pictures", model="conse")   # its conse index, made beside the first on first use
col.update(progress=True)                 # only new/changed files reach the model
col.search("a dog on the beach", k=10)    # [Hit(rank, score, path, relpath), …]
"""

from cliplab.errors import IndexBusyError, IndexMismatchError, IndexNotFoundError
from cliplab.index.collection import Collection, DuplicateGroup, Hit
from cliplab.index.locate import default_index_dir, find_index, folder_indexes, index_home
from cliplab.index.sync import IndexInterrupted, SyncStats

__all__ = [
    "Collection",
    "DuplicateGroup",
    "Hit",
    "SyncStats",
    "default_index_dir",
    "find_index",
    "folder_indexes",
    "index_home",
    "IndexBusyError",
    "IndexInterrupted",
    "IndexMismatchError",
    "IndexNotFoundError",
]
