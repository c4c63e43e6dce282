"""The driver: plan shards, skip finished ones, run the rest (here or on Ray), write the manifest.

Resumable: a rerun of the same command finds the finished shards (their metadata file is renamed
into place last) and runs only the others. Exactly-once: a shard's files have fixed names, written
under temp names and renamed, so a shard retried after a killed actor replaces — never duplicates —
whatever an earlier attempt left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from cliplab.data.shards import EMB_DTYPE, list_shards, read_manifest
from cliplab.data.writers import write_shards_manifest
from cliplab.distributed.plan import DEFAULT_SHARD_SIZE, ShardSpec, plan_digest, plan_shards
from cliplab.distributed.worker import ShardEmbedder, load_job_encoder, model_fingerprint
from cliplab.errors import CliplabError, OutputError
from cliplab.models.core.base import Encoder

ENGINES = ("local", "ray")


@dataclass
class JobSummary:
    out: str
    engine: str
    model: str
    shards: int
    skipped: int  # finished by an earlier run
    images: int  # every input, this run and earlier ones
    ok: int
    failed: int
    seconds: float
    images_per_s: float  # this run's images / this run's seconds
    failures: list = field(default_factory=list)  # [(path, reason)], first 100

    def as_dict(self) -> dict:
        return asdict(self)


def embed_to_shards(
    inputs: Sequence[str],
    out: str | Path,
    model: str | Encoder = "lite",
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    captions: bool = False,
    dtype: str = EMB_DTYPE,
    model_options: dict | None = None,
    progress: bool = False,
    embedder: type = ShardEmbedder,
) -> JobSummary:
    """Embed `inputs` into `out` in clip-retrieval's layout; see the module docs. `model` is a spec
    (each worker loads it) or an Encoder object (pickled to the workers). `embedder` is the actor
    class (tests swap in one that crashes)."""
    if engine not in ENGINES:
        raise CliplabError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise CliplabError("--workers must be at least 1")
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    specs = plan_shards(inputs, shard_size)
    given = model if isinstance(model, Encoder) else None
    encoder = given or load_job_encoder(model, model_options)  # on the driver too: a bad spec fails here, at once
    model = encoder.name if given else model
    if getattr(encoder, "needs_fit", False):
        raise CliplabError(f"model {model!r} is fitted on all the data it embeds, so it cannot embed in shards")
    digest = plan_digest(specs)
    old = read_manifest(out)
    if old is not None and (old.get("plan_digest") != digest or old.get("model") != model):
        raise OutputError(
            f"{out} holds another job (other inputs, shard size or model); give a new --out or delete that folder"
        )
    info = model_fingerprint(encoder)
    if old is not None and old.get("model_info") not in (None, info):
        raise OutputError(
            f"{out}: its shards were made by another version of {model!r} ({old.get('model_info')}); give a new --out"
        )
    done = {s.id for s in list_shards(out)} if old is not None and (out / "metadata").is_dir() else set()
    done &= {s.id for s in specs}
    todo = [s for s in specs if s.id not in done]
    manifest = {
        "format": "clip-retrieval",
        "kind": "image",
        "model": model,
        "model_info": info,
        "dim": encoder.dim,
        "dtype": dtype,
        "normalized": True,
        "failed_rows": "zero vectors; metadata status='failed' with the reason in 'error'",
        "text_emb": captions,
        "shard_size": shard_size,
        "plan_digest": digest,
        "complete": False,
        "shards": [{"id": s.id, "source": s.source, "count": s.count} for s in specs],
    }
    out.mkdir(parents=True, exist_ok=True)
    write_shards_manifest(out, manifest)
    ctor = dict(
        model=model,
        out=str(out),
        captions=captions,
        batch_size=batch_size,
        dtype=dtype,
        model_options=model_options or {},
        encoder=given,
    )
    t0 = time.perf_counter()
    n_new = 0
    fingerprints = set()
    with _bar(sum(s.count for s in todo), f"embedding ({engine})", progress) as advance:
        rows = (
            _run_ray(todo, ctor, embedder, address, workers)
            if engine == "ray"
            else _run_local(todo, {**ctor, "encoder": encoder}, embedder)
        )
        for row in rows:
            n_new += int(row["images"])
            fingerprints.add(str(row["model"]))
            advance(int(row["images"]))
    seconds = time.perf_counter() - t0
    if len(fingerprints) > 1:
        raise CliplabError(
            f"workers loaded different models for {model!r}: {sorted(fingerprints)} "
            "(same package and weights on every node?)"
        )
    if fingerprints and json.loads(fingerprints.pop()) != info:
        raise CliplabError(
            f"the workers' {model!r} differs from the driver's ({info}): same package and weights on every node?"
        )
    return _finish(out, manifest, specs, engine, model, len(done), n_new, seconds)


def _finish(
    out: Path, manifest: dict, specs: list[ShardSpec], engine: str, model: str, skipped: int, n_new: int, seconds: float
) -> JobSummary:
    """Count every shard's rows from its metadata (this run's and earlier ones'), mark complete."""
    shards = list_shards(out)
    ok = failed = 0
    failures: list = []
    for s in shards:
        meta = s.metadata(columns=["image_path", "status", "error"])
        bad = meta[meta["status"] != "ok"]
        ok += len(meta) - len(bad)
        failed += len(bad)
        failures.extend(zip(bad["image_path"], bad["error"]))
    finished = {s.id for s in shards}
    manifest.update(
        complete=finished >= {s.id for s in specs},
        counts={"images": ok + failed, "ok": ok, "failed": failed},
        engine=engine,
        updated=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    write_shards_manifest(out, manifest)
    return JobSummary(
        str(out),
        engine,
        model,
        len(specs),
        skipped,
        ok + failed,
        ok,
        failed,
        round(seconds, 3),
        round(n_new / seconds, 2) if seconds > 0 else 0.0,
        failures[:100],
    )


def _run_local(todo, ctor, embedder) -> Iterator[dict]:
    if not todo:
        return
    actor = embedder(**ctor)
    for spec in todo:
        yield actor.run(spec)


def _run_ray(todo, ctor, embedder, address, workers) -> Iterator[dict]:
    """Ray Data batch inference: one row per shard, `map_batches` over an actor pool (the model
    loads once per actor). Ray Data's actor pools restart a dead actor and retry its shard
    (max_restarts / max_task_retries -1 by default); bad images never kill one (they are recorded)."""
    if not todo:
        return
    try:
        import ray
        import ray.data
    except ImportError:
        raise CliplabError("--engine ray needs Ray: pip install 'cliplab[ray]'") from None
    import logging

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its INFO lines would interleave with our bar
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="WARNING",
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise CliplabError(f"cannot reach a Ray cluster at {address or 'a new local one'}: {e}") from None
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the driver shows its own bar, in images/s
        ctx.print_on_execution_start = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(workers or cpus, len(todo)))
        threads = max(1, cpus // n) if workers else 1
        ds = ray.data.from_items([{"spec": s.to_json()} for s in todo], override_num_blocks=len(todo))
        ds = ds.map_batches(
            embedder,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=n),
            num_cpus=threads,
            fn_constructor_kwargs={**ctor, "threads": threads},
        )
        try:
            yield from ds.iter_rows()
        except ray.exceptions.RayError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, CliplabError):
                raise cause from None
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CliplabError(f"the Ray job failed ({first}); finished shards are kept: rerun to continue") from None
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _bar(total: int, description: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar with images/s (the shared helper has no rate column)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not enabled or total <= 0 or not console.is_terminal:
        yield lambda n=1: None
        return
    t0 = time.perf_counter()
    cols = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*cols, console=console) as prog:
        task = prog.add_task(description, total=total, rate="")
        done = 0

        def advance(n: int = 1) -> None:
            nonlocal done
            done += n
            prog.update(task, advance=n, rate=f"{done / max(time.perf_counter() - t0, 1e-9):.1f} img/s")

        yield advance
