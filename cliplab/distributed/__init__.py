"""Embedding at scale: a job cut into deterministic shards, written in clip-retrieval's layout.

    from cliplab.distributed import embed_to_shards
    embed_to_shards(["photos/", "data/00000.tar"], "out/", model="lite", engine="ray", workers=4)

`engine="local"` runs the shards one after another in this process (no Ray); `engine="ray"` runs
them on a Ray cluster with Ray Data (`map_batches` over an actor pool, one model per actor).
Nothing here imports Ray until a Ray job starts.
"""

from cliplab.distributed.job import JobSummary, embed_to_shards
from cliplab.distributed.plan import ShardSpec, plan_shards
from cliplab.distributed.worker import ShardEmbedder, embed_shard

__all__ = ["JobSummary", "ShardEmbedder", "ShardSpec", "embed_shard", "embed_to_shards", "plan_shards"]
