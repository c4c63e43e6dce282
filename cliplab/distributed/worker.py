"""One shard → its clip-retrieval files. The same code runs in-process (engine local) and inside
each Ray actor, so both engines give the same vectors as `cliplab embed`: it is the single-process
pipeline (`embed_images`: threaded decode, skip-and-report) applied to the shard's images."""

from __future__ import annotations

import inspect
import json
import os
import time

import numpy as np

from cliplab.data.shards import EMB_DTYPE, TarMember, caption_of, list_tar
from cliplab.data.writers import write_shard
from cliplab.distributed.plan import ShardSpec
from cliplab.errors import CliplabError
from cliplab.models.core.base import Encoder
from cliplab.models.specs import vector_identity
from cliplab.pipeline import embed_images, embed_texts


def model_fingerprint(enc: Encoder) -> dict:
    """What identifies the vectors a worker makes (`specs.vector_identity`)."""
    return vector_identity(enc.describe())


def load_job_encoder(model: str, options: dict | None = None) -> Encoder:
    """`cliplab.runtime.load_encoder(model, **options)` (runtime=, precision=, device=): the loader
    `cliplab.api` and the CLI use, with the same defaults, so vectors match theirs."""
    from cliplab.runtime import load_encoder

    options = {k: v for k, v in (options or {}).items() if v is not None}
    params = inspect.signature(load_encoder).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        raise CliplabError(f"this model loader does not take {', '.join(unknown)}")
    enc = load_encoder(model, **options)
    if getattr(enc, "needs_fit", False):
        raise CliplabError(
            f"model {model!r} is fitted on all the data it embeds, so it cannot embed in shards: "
            "use lite, conse or a CLIP checkpoint"
        )
    return enc


def embed_shard(
    encoder: Encoder, spec: ShardSpec, captions: bool = False, batch_size: int | None = None, workers: int | None = None
):
    """(vectors (n, D) float32 with zero rows for failures, metadata DataFrame, text vectors or None)."""
    import pandas as pd

    items = list_tar(spec.tar) if spec.tar else list(spec.items)
    res = embed_images(encoder, items, batch_size=batch_size, workers=workers)
    rows = np.asarray(res.rows, np.int64)
    vectors = np.zeros((len(items), encoder.dim), np.float32)
    ok = rows >= 0
    vectors[ok] = res.vectors[rows[ok]]
    caps = [caption_of(it) for it in items]
    meta = pd.DataFrame(
        {
            "image_path": [str.__str__(it) if isinstance(it, TarMember) else str(it) for it in items],
            "key": [
                it.key if isinstance(it, TarMember) else os.path.splitext(os.path.basename(str(it)))[0] for it in items
            ],
            "caption": pd.array(caps, dtype="string"),
            "status": res.status,
            "error": res.errors,
        }
    )
    text = None
    if captions:
        text = np.zeros_like(vectors)
        have = [i for i, c in enumerate(caps) if c]
        if have:
            text[have] = embed_texts(encoder, [caps[i] for i in have])
    return vectors, meta, text


class ShardEmbedder:
    """A callable class for Ray Data's `map_batches`: the model loads once per actor, then each
    batch of shard specs is embedded and written (temp file + rename, so a retried shard is written
    exactly once). Returns one row per shard: id, counts, seconds, model fingerprint."""

    def __init__(
        self,
        model: str,
        out: str,
        captions: bool = False,
        batch_size: int | None = None,
        threads: int | None = None,
        dtype: str = EMB_DTYPE,
        model_options: dict | None = None,
        encoder: Encoder | None = None,
    ):
        if threads:
            from cliplab.settings import set_threads

            set_threads(threads)
            import torch

            torch.set_num_threads(threads)
        self.encoder = encoder if encoder is not None else load_job_encoder(model, model_options)
        self.fingerprint = json.dumps(model_fingerprint(self.encoder), sort_keys=True)
        self.out, self.captions, self.batch_size, self.dtype = out, captions, batch_size, dtype

    def run(self, spec: ShardSpec) -> dict:
        t0 = time.perf_counter()
        vectors, meta, text = embed_shard(self.encoder, spec, self.captions, self.batch_size)
        write_shard(self.out, spec.id, vectors, meta, text, self.dtype)
        n_ok = int((meta["status"] == "ok").sum())
        return {
            "shard": spec.id,
            "images": len(meta),
            "ok": n_ok,
            "failed": len(meta) - n_ok,
            "seconds": time.perf_counter() - t0,
            "model": self.fingerprint,
        }

    def __call__(self, batch: dict) -> dict:
        rows = [self.run(ShardSpec.from_json(str(s))) for s in batch["spec"]]
        return {k: np.array([r[k] for r in rows]) for k in rows[0]} if rows else {}
