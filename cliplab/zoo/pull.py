"""`cliplab models pull SPEC`: download a hub model into the standard Hugging Face cache, verified.

Downloads go through huggingface_hub (HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE honoured; other
tools share the cache). What huggingface_hub 2.x checks itself, and what is added here:
- it compares each file's byte count with the size the hub announced (X-Linked-Size / Content-Length)
  and, when the connection drops mid-file, resumes with a Range request (up to 5 times, same call);
- it does not hash what it downloaded. Here every file is hashed after download and compared with
  what the hub's file listing says: sha256 = the LFS oid for LFS files (weights), git's blob sha1 for
  the others. A file that does not match is deleted, downloaded once more, and refused if it still
  does not match.
Files are fetched by commit and `refs/main` (what makes a model "installed" for every reader of the
cache) is written last, once every file is verified: a pull that fails leaves the model as it was;
verified files stay in the cache, so the next pull skips them. A dropped connection resumes within
the same pull from the last whole chunk huggingface_hub wrote (10 MiB); a pull that is killed
re-fetches only the file it was on.

cliplab runs with HF_HUB_OFFLINE=1 (nothing reaches for the network unasked); a pull is asking, so
it lifts offline mode for its own calls only (`_online`), and puts it back afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from cliplab.data.atomic import atomic_write_text
from cliplab.data.digest import file_digest
from cliplab.errors import CliplabError, ModelSpecError
from cliplab.models import specs

# Files a model folder may need besides its weights: transformers configs, tokenizers (BPE,
# SentencePiece), open_clip's config. Anything else in a repo (other formats, README, images) is skipped.
SUPPORT_FILES = (
    "config.json",
    "open_clip_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
# Weights, best first per family: safetensors over pickles (safe to load, and mmap-able).
WEIGHT_CHOICES = (
    ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin"),
    ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
)
HUB_PREFIX = "hf-hub:"
OPEN_CLIP_PREFIX = "open_clip:"


class PullError(CliplabError):
    """A model that could not be downloaded (no network, unknown repo, a file that fails its checksum)."""


@dataclass
class PullResult:
    repo: str
    commit: str
    folder: Path  # the snapshot folder in the HF cache
    files: list[dict] = field(default_factory=list)  # {"file", "size", "check", "downloaded"}
    export: str | None = None  # what the ONNX export did (or why it did not run)
    depends: list[str] = field(default_factory=list)  # text-tower base repos pulled with it (config, tokenizer)

    @property
    def downloaded_bytes(self) -> int:
        return sum(f["size"] for f in self.files if f["downloaded"])

    def as_dict(self) -> dict:
        return {
            "repo": self.repo,
            "commit": self.commit,
            "folder": str(self.folder),
            "files": self.files,
            "downloaded_bytes": self.downloaded_bytes,
            "export": self.export,
            "depends": self.depends,
        }


def hub_repo(spec: str) -> str:
    """The hub repo id a spec names (`ORG/NAME` or `hf-hub:ORG/NAME`), or ModelSpecError saying why not."""
    text = (spec or "").strip()
    if text.startswith(OPEN_CLIP_PREFIX):
        text = HUB_PREFIX + open_clip_hub_id(text)
    repo = text[len(HUB_PREFIX) :] if text.startswith(HUB_PREFIX) else text
    if text == "auto":
        raise ModelSpecError(
            f"auto is not a hub id; the CLIP auto picks when cached: cliplab models pull {specs.DEFAULT_CLIP}"
        )
    parsed = specs.parse(repo)  # a typo or a path that is no checkpoint: the one message every face shows
    if parsed.path is not None or "/" not in repo:
        where = "is a local folder" if parsed.path is not None else "ships with cliplab"
        raise ModelSpecError(
            f"{text!r} {where}: nothing to pull (pull takes a Hugging Face hub id such as {specs.DEFAULT_CLIP})"
        )
    try:
        from huggingface_hub.utils import validate_repo_id

        validate_repo_id(repo)
    except ValueError as e:
        raise ModelSpecError(f"{text!r} is not a Hugging Face hub id (ORG/NAME): {e}") from None
    return repo


def open_clip_hub_id(spec: str) -> str:
    """`open_clip:ARCH/TAG` → the hub repo open_clip's own pretrained table downloads it from."""
    arch, _, tag = spec[len(OPEN_CLIP_PREFIX) :].partition("/")
    try:
        import open_clip

        hub = (open_clip.get_pretrained_cfg(arch, tag) or {}).get("hf_hub", "")
    except ImportError:
        raise ModelSpecError(
            f"{spec}: resolving open_clip tags needs open-clip-torch (pip install open-clip-torch)"
        ) from None
    if not hub:
        raise ModelSpecError(f"{spec}: open_clip has no hub copy of {arch} {tag!r} (see open_clip.list_pretrained())")
    return hub.rstrip("/")


def choose_files(names: list[str]) -> list[str]:
    """What a model needs from a repo's file list: its support files and one weights format per family
    (safetensors preferred; a sharded index brings its shards)."""
    have = set(names)
    chosen = [n for n in SUPPORT_FILES if n in have]
    for family in WEIGHT_CHOICES:
        best = next((n for n in family if n in have), None)
        if best is None:
            continue
        if best.endswith(".index.json"):
            stem = best[: -len(".index.json")].rsplit(".", 1)
            chosen += sorted(n for n in have if n.startswith(stem[0] + "-") and n.endswith("." + stem[1]))
        chosen.append(best)  # the index last: a model is complete only once it is there
    return chosen


def hub_endpoint() -> str:
    """The hub address huggingface_hub uses: HF_ENDPOINT now (the library reads it once, at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


@contextlib.contextmanager
def _online() -> Iterator[None]:
    """Lift HF_HUB_OFFLINE for this call only: huggingface_hub reads it once at import into
    `constants.HF_HUB_OFFLINE`, which every request checks."""
    from huggingface_hub import constants

    was = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = was


def offline_hint(repo: str) -> str:
    folder = f"models--{repo.replace('/', '--')}"
    return (
        f"on a machine with network access run `cliplab models pull {repo}`, then copy its "
        f"~/.cache/huggingface/hub/{folder} folder to {hub_cache() / folder}"
    )


def _git_sha1(path: Path) -> str:
    """git's blob id of a file: what the hub reports for files not stored in LFS."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_file(path: Path, sibling) -> tuple[str | None, str]:
    """(None, what was checked) when `path` matches the hub's listing, else (why not, …)."""
    size = path.stat().st_size
    if sibling.lfs is not None:
        if size != sibling.lfs.size:
            return f"size {size}, the hub says {sibling.lfs.size}", "size"
        got = file_digest(path, algorithm="sha256")
        return (
            None if got == sibling.lfs.sha256 else f"sha256 {got[:12]}…, the hub says {sibling.lfs.sha256[:12]}…"
        ), "sha256"
    if sibling.blob_id:
        got = _git_sha1(path)
        return (
            None if got == sibling.blob_id else f"git sha1 {got[:12]}…, the hub says {sibling.blob_id[:12]}…"
        ), "sha1"
    if sibling.size is not None and size != sibling.size:
        return f"size {size}, the hub says {sibling.size}", "size"
    return None, "size" if sibling.size is not None else "none"


def _remove(pointer: Path) -> None:
    """Drop a snapshot file and the blob it points to."""
    blob = Path(os.path.realpath(pointer))
    pointer.unlink(missing_ok=True)
    if blob != pointer:
        blob.unlink(missing_ok=True)


def _bar_class(advance: Callable[[int], None]):
    """huggingface_hub's tqdm, silenced, feeding cliplab's one progress bar."""
    from huggingface_hub.utils import tqdm as hub_tqdm

    class Bar(hub_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if n:
                advance(n)
            return super().update(n)

    return Bar


def _errors():
    from huggingface_hub import errors

    try:  # huggingface_hub 2.x runs on httpx2; older releases on httpx
        import httpx2 as http
    except ImportError:
        import httpx as http
    offline = (http.ConnectError, http.TimeoutException, errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError)
    return errors, offline


def _fail(repo: str, e: BaseException, endpoint: str) -> PullError:
    errors, offline = _errors()
    if isinstance(e, offline):
        return PullError(f"cannot reach the Hugging Face hub at {endpoint} to pull {repo}; {offline_hint(repo)}")
    if isinstance(e, errors.GatedRepoError):
        return PullError(f"{repo} is gated: accept its terms on {endpoint}/{repo}, then set HF_TOKEN and pull again")
    if isinstance(e, errors.RepositoryNotFoundError):
        return PullError(f"no model {repo} on {endpoint} (a private one needs HF_TOKEN)")
    if isinstance(e, errors.RevisionNotFoundError):
        return PullError(f"{repo}: no such revision on {endpoint}")
    msg = " ".join(str(e).split())[:200] or type(e).__name__
    return PullError(f"pulling {repo} failed: {msg}; run the same command again to resume")


def pull(
    spec: str,
    export: bool = True,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> PullResult:
    """Download what `spec`'s model needs, verify every file, then export its ONNX towers once."""
    repo = hub_repo(spec)
    notify = notify or (lambda _m: None)
    endpoint = hub_endpoint()
    try:
        with _online():
            result = _download(repo, endpoint, progress, notify)
        for dep in text_dependencies(result.folder):  # before the model's own ref: it needs them
            with _online():
                done = _download(dep, endpoint, progress, notify, weights=False)
            _install(dep, done.commit)
            result.depends.append(dep)
    except (CliplabError, KeyboardInterrupt):
        raise
    except Exception as e:
        _errs, offline = _errors()
        if isinstance(e, (OSError, ValueError, *offline)) or type(e).__module__.startswith(
            ("httpx", "huggingface_hub")
        ):
            raise _fail(repo, e, endpoint) from None
        raise
    _install(repo, result.commit)
    if export:
        result.export = export_towers(repo, notify)
    return result


def _install(repo: str, commit: str) -> None:
    """Files are fetched by commit, so huggingface_hub never moved `refs/main`: pointing it at the
    commit, last and only once every file is verified, is what makes a repo installed."""
    refs = hub_cache() / f"models--{repo.replace('/', '--')}" / "refs" / "main"
    refs.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(refs, commit)


def text_dependencies(folder: Path | None) -> list[str]:
    """Hub repos an open_clip checkpoint's text tower is built from (`text_cfg.hf_model_name` /
    `hf_tokenizer_name`, e.g. xlm-roberta-base for the multilingual CLIPs, facebook/nllb-200-distilled-600M
    for NLLB-CLIP): their config and tokenizer, which open_clip reads when it builds the tower."""
    try:
        cfg = json.loads((Path(folder) / "open_clip_config.json").read_text(encoding="utf-8"))
        text_cfg = cfg.get("model_cfg", {}).get("text_cfg", {})
    except (OSError, ValueError, AttributeError, TypeError):
        return []
    out = []
    for key in ("hf_model_name", "hf_tokenizer_name"):
        name = text_cfg.get(key)
        if isinstance(name, str) and name.strip() and not Path(name).exists() and name not in out:
            out.append(name.strip())  # a hub id (xlm-roberta-base, ORG/NAME); a local folder needs nothing
    return out


def _download(repo: str, endpoint: str, progress: bool, notify, weights: bool = True) -> PullResult:
    from huggingface_hub import HfApi, try_to_load_from_cache

    from cliplab.progress import progress_bar

    info = HfApi(endpoint=endpoint).model_info(repo, files_metadata=True)
    listing = {s.rfilename: s for s in info.siblings or []}
    names = choose_files(list(listing))
    if not weights:  # a text tower's base model: its config and tokenizer, never its weights
        names = [n for n in names if n in SUPPORT_FILES]
        if "config.json" not in names:
            raise PullError(f"{repo} has no config.json, which the text tower is built from")
    elif not any(n in listing for family in WEIGHT_CHOICES for n in family if n in names):
        raise PullError(f"{repo} has no weights cliplab can load ({', '.join(f[1] for f in WEIGHT_CHOICES)} …)")
    todo = [n for n in names if not isinstance(try_to_load_from_cache(repo, n, revision=info.sha), str)]
    total = sum((listing[n].size or 0) for n in todo)
    notify(f"pulling {repo} ({len(names)} files, {total / 1e6:.1f} MB to download) from {endpoint}")
    result = PullResult(repo, info.sha, hub_cache())
    with progress_bar(total, f"pull {repo}", enabled=progress) as advance:
        bar = _bar_class(advance)
        for name in names:
            path, check = _fetch(repo, name, info.sha, listing[name], endpoint, bar)
            result.folder = path.parent
            result.files.append({"file": name, "size": path.stat().st_size, "check": check, "downloaded": name in todo})
    return result


def _fetch(repo: str, name: str, commit: str, sibling, endpoint: str, bar) -> tuple[Path, str]:
    """Download one file (or find it cached), check it; a mismatch is deleted and fetched once more."""
    from huggingface_hub import hf_hub_download

    for attempt in (0, 1):
        path = Path(
            hf_hub_download(repo, name, revision=commit, endpoint=endpoint, tqdm_class=bar, force_download=attempt > 0)
        )
        bad, check = check_file(path, sibling)
        if bad is None:
            return path, check
        _remove(path)
    raise PullError(f"{repo}: {name} failed its checksum twice ({bad}): refused and removed; nothing was installed")


def export_towers(repo: str, notify: Callable[[str], None]) -> str:
    """Export the pulled model's ONNX towers into cliplab's cache once (the runtime's own path), so
    the first search is fast. A model the runtime cannot export still counts as pulled."""
    from cliplab.runtime import load, runtime_of
    from cliplab.runtime.select import onnx_available

    if not onnx_available():
        return "skipped: onnxruntime is not installed"
    try:
        enc = load(repo, runtime="onnx", notify=notify)
    except CliplabError as e:
        return f"not exported: {e}"
    r = runtime_of(enc)
    return "ready (ONNX)" if r.get("runtime") == "onnx" else f"runs on torch ({r.get('note', 'no ONNX export')})"
