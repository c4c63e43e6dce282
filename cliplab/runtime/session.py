"""Towers and encoders that run cached ONNX graphs with ONNX Runtime — no torch, no transformers.

`OnnxTower` implements the `Tower` interface from a cache entry: images are preprocessed with the
stored `ResizeCropNormalize` settings (numpy + PIL), texts are tokenised with the `tokenizers`
library from the stored tokenizer.json, and the graph runs in an `InferenceSession` created on
first use (a text search never creates the image session). `OnnxEncoder` is the `TowerEncoder`
of two of them; its `describe()` is the torch model's identity (so an index built with
one runtime is searchable with the other) plus the runtime, precision and device that ran.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from cliplab.data.atomic import atomic_write_bytes
from cliplab.data.digest import short_digest
from cliplab.errors import CliplabError
from cliplab.models.core.preprocess import ResizeCropNormalize
from cliplab.models.core.tower import Model, Tower, TowerEncoder
from cliplab.runtime import without_runtime
from cliplab.runtime.cache import Entry
from cliplab.runtime.device import batch_parallelism, cpu_threads, ort_providers

TEXT_BATCH = 256


def preprocess_from_config(cfg: dict) -> ResizeCropNormalize:
    """The stored `{"preprocess": {...}}` dict → the same numpy transform the torch tower uses."""
    p = dict(cfg)
    for k in ("mean", "std"):
        if k in p:
            p[k] = tuple(float(v) for v in p[k])
    return ResizeCropNormalize(**p)


class OnnxTower(Tower):
    def __init__(
        self,
        entry: Entry,
        modality: str,
        precision: str = "fp32",
        device: str = "cpu",
        repair: Callable[[], dict] | None = None,
    ):
        self.entry, self.modality, self.device = entry, modality, device
        self._repair = repair
        self._lock = threading.Lock()
        self._session = None
        self._tokenizer = None
        self._language: tuple[int, int, str] | None = None  # (export's code id, query's code id, code)
        self._pool = None
        # Image batches (throughput) are split across concurrent calls of one session; text (one
        # query's latency) uses every thread in one call. The GPU gets whole batches.
        self.callers, self.threads = 1, cpu_threads()
        if modality == "image" and device == "cpu":
            self.callers, self.threads = batch_parallelism(self.threads)
        self._setup(precision)

    def _setup(self, precision: str) -> None:
        rec = self.entry.manifest["towers"][self.modality]
        self.rec, self.config = rec, rec.get("config") or {}
        self.name, self.dim = rec["name"], int(rec["dim"])
        self.batch_size = int(rec.get("batch_size", 32))
        self.output_name, self.input_names = rec["output"], list(rec["inputs"])
        int8 = rec["graphs"].get("int8") or {}
        if precision == "int8" and "file" in int8:
            self.graph, self.precision = int8, "int8"
        elif precision == "int8":
            why = int8.get("fallback", "not prepared")
            self.graph, self.precision = rec["graphs"]["fp32"], f"fp32 (int8 kept fp32: {why})"
        else:
            self.graph, self.precision = rec["graphs"]["fp32"], "fp32"
        self._requested = precision
        self._pre = preprocess_from_config(self.config["preprocess"]) if self.modality == "image" else None

    def fingerprint(self) -> str:
        lang = self.language
        return short_digest(f"{self.rec['fingerprint']}|{lang}") if lang else self.rec["fingerprint"]

    def runtime_config(self) -> dict:
        return dict(self.config)

    # --- inputs ---------------------------------------------------------------------------------
    def preprocess(self, image: Image.Image) -> np.ndarray:
        if self._pre is None:
            return super().preprocess(image)
        return self._pre(image)

    def preprocess_into(self, image: Image.Image, out: np.ndarray) -> None:
        if self._pre is None or out.dtype != np.float32:
            return super().preprocess_into(image, out)
        self._pre(image, out=out)

    def in_language(self, lang: str) -> OnnxTower:
        """This text tower reading texts as `lang` (NLLB-CLIP): the exported tokenizer prefixes every
        text with the export's language code, and that one token is swapped for `lang`'s — what NLLB's
        tokenizer does with `src_lang` (same length, same truncation)."""
        if self.modality != "text":
            raise CliplabError(f"model {self.name} takes no query language (a language code is for NLLB-CLIP models)")
        tok = self.tokenizer()
        # the export records its code; a cache from before that is read from what the tokenizer adds
        first = tok.encode("a").tokens[:1]
        default = self.config.get("language") or (first[0] if first and _is_language_code(first[0]) else None)
        if not default:
            raise CliplabError(f"model {self.name} takes no query language (a language code is for NLLB-CLIP models)")
        new_id = tok.token_to_id(lang) if _is_language_code(lang) else None
        if new_id is None:
            from cliplab.models.language import unknown_code

            raise unknown_code(lang, [t for t in tok.get_vocab(with_added_tokens=True) if _is_language_code(t)])
        out = copy.copy(self)
        out._lock, out._language = threading.Lock(), (int(tok.token_to_id(default)), int(new_id), lang)
        return out

    @property
    def language(self) -> str | None:
        return self._language[2] if self._language else None

    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.entry.path(self.config["tokenizer_file"])))
            tok.enable_truncation(max_length=int(self.config["max_length"]))
            pad_id = int(self.config.get("pad_id", 0))
            tok.enable_padding(pad_id=pad_id, pad_token=tok.id_to_token(pad_id) or "[PAD]")
            self._tokenizer = tok
        return self._tokenizer

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        if self.modality != "text":
            return super().tokenize(texts)
        texts = [str(t) for t in texts]
        if self.config.get("lowercase"):
            texts = [t.lower() for t in texts]
        enc = self.tokenizer().encode_batch(texts)
        fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        out = {n: np.asarray([getattr(e, fields[n]) for e in enc], dtype=np.int64) for n in self.input_names}
        if self._language and len(out["input_ids"]):
            ids, (old, new, _) = out["input_ids"], self._language
            ids[:, 0] = np.where(ids[:, 0] == old, new, ids[:, 0])
        return out

    # --- compute --------------------------------------------------------------------------------
    def session(self):
        """The InferenceSession, created on first use from a graph whose sha256 matches the manifest."""
        with self._lock:
            if self._session is None:
                self._session = self._open() or self._open(repaired=True)
            return self._session

    def _open(self, repaired: bool = False):
        """A session on the verified graph; None when it is corrupt/unloadable (then: rebuild once)."""
        if repaired:
            if self._repair is None:
                raise CliplabError(
                    f"ONNX cache entry {self.entry.dir} is corrupt ({self.graph['file']}); delete it and run again"
                )
            self._repair()  # corrupt or stale: rebuilt from the model, never trusted
        self._setup(self._requested)  # the entry's current manifest (the other tower may have rebuilt it)
        path = self.entry.verified_path(self.graph)
        if path is None:
            if repaired:
                raise CliplabError(
                    f"ONNX cache entry {self.entry.dir}: {self.graph['file']} is corrupt even "
                    "after a rebuild; delete the folder and run again"
                )
            return None
        mapped = mapped_graph(self.entry, path)
        if mapped is not None:
            try:
                return _make_session(str(mapped), self.device, self.threads)
            except Exception:  # noqa: BLE001 a bad copy: dropped, the verified graph is used below
                _drop_mapped(path)
        try:
            return _make_session(str(path), self.device, self.threads)
        except CliplabError:
            raise
        except Exception as e:  # noqa: BLE001 ORT raises its own types for an unloadable graph
            if repaired:
                raise CliplabError(f"ONNX Runtime cannot load {path}: {' '.join(str(e).split())[:200]}") from None
            return None

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        out = self.session().run([self.output_name], feeds)[0]
        return np.asarray(out, dtype=np.float32)

    def encode(self, batch) -> np.ndarray:
        if self.modality == "image":
            x = np.ascontiguousarray(batch, dtype=np.float32)
            parts = min(self.callers, len(x))
            if parts <= 1:
                return self.run({self.input_names[0]: x})
            if self._pool is None:
                with self._lock:
                    self._pool = self._pool or ThreadPoolExecutor(self.callers, thread_name_prefix="ort-image")
            session, name = self.session(), self.input_names[0]
            futures = [
                self._pool.submit(session.run, [self.output_name], {name: chunk}) for chunk in np.array_split(x, parts)
            ]
            return np.concatenate([np.asarray(f.result()[0], dtype=np.float32) for f in futures])
        texts = list(batch)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(
            [self.run(self.tokenize(texts[i : i + TEXT_BATCH])) for i in range(0, len(texts), TEXT_BATCH)]
        )

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        data = np.load(self.entry.path(f"{self.modality}.inputs.npz"))
        return {k: data[k][:n] for k in self.input_names}

    def torch_module(self):
        raise TypeError("an ONNX tower has no torch module (load the model with runtime='torch')")


def _mapped_names(path: Path) -> tuple[Path, Path, Path]:
    """(graph, weights, stamp) of a graph's copy with external weights, beside it."""
    return tuple(path.with_name(f"{path.name}.{ext}") for ext in ("mapped", "weights", "mapped.ok"))


def _stamp(*paths: Path) -> str:
    return ";".join(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}" for st in (p.stat() for p in paths))


def mapped_graph(entry: Entry, path: Path) -> Path | None:
    """A copy of the verified graph `path` with its weights in a separate file, which ONNX Runtime
    reads straight into its tensors instead of parsing them out of the protobuf: lite's 90 MB text
    tower opens with half the CPU (~0.09 s instead of ~0.19 s; docs/benchmarks.md, issue 21). Same
    graph, same bytes, same session options: the vectors are identical. Made once (under the
    entry's lock); trusted while the stat of the graph and of both files matches the stamp written
    with them, as `Entry.verified_path` trusts a graph. None when it cannot be made (read-only
    cache): then the graph itself is loaded."""
    graph, weights, stamp = _mapped_names(path)

    def current() -> bool:
        try:
            return stamp.read_text() == _stamp(path, graph, weights)
        except OSError:
            return False

    if current():
        return graph
    if not os.access(path.parent, os.W_OK):  # a read-only cache: not even an attempt (onnx is slow to import)
        return None
    tmp = path.with_name(f".{graph.name}-{os.getpid()}.tmp")
    try:
        import onnx

        with entry.lock():
            if current():  # made by another process while this one waited
                return graph
            tmp.mkdir(exist_ok=True)  # written aside, then renamed: no half-written file under the names
            onnx.save_model(
                onnx.load(str(path)), str(tmp / graph.name), save_as_external_data=True, location=weights.name
            )
            os.replace(tmp / weights.name, weights)
            os.replace(tmp / graph.name, graph)
            atomic_write_bytes(stamp, _stamp(path, graph, weights).encode())
        return graph
    except Exception:  # noqa: BLE001 no space, read-only, an onnx that cannot read it: the plain graph
        _drop_mapped(path)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _drop_mapped(path: Path) -> None:
    for p in _mapped_names(path):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass


def _make_session(graph: str | bytes, device: str, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Decode threads share the cores with inference: idle ORT threads must sleep, not spin.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, opts, providers=ort_providers(device))


def _is_language_code(token: str) -> bool:
    """A FLORES-200 code as NLLB's vocabulary holds them: deu_Latn, zho_Hans."""
    return len(token) == 8 and token[3] == "_" and token[:3].isalpha() and token[:3].islower() and token[4:].isalpha()


class OnnxEncoder(TowerEncoder):
    """The `TowerEncoder` of a cache entry's two graphs: the same encoder, its towers OnnxTowers."""

    def __init__(
        self,
        entry: Entry,
        name: str,
        precision: str = "fp32",
        device: str = "cpu",
        repair: Callable[[], dict] | None = None,
    ):
        m = entry.manifest
        self.entry, self.device = entry, device
        self.image = OnnxTower(entry, "image", precision, device, repair)
        self.text = OnnxTower(entry, "text", precision, device, repair)
        meta = {"runtime": "onnx", "cache": str(entry.dir)}
        super().__init__(Model(self.image, self.text, name, int(m["dim"]), float(m["logit_scale"]), meta))
        self.image_batch_size = max(self.image.batch_size, 32)  # ORT is fastest at 32 (docs/measurements)

    def to(self, device: str) -> OnnxEncoder:
        """The device is chosen when the sessions are made (`runtime.load(device=)`)."""
        if device != self.device:
            raise CliplabError(
                f"{self.name}: load it with device={device!r} to run there (ONNX sessions are per device)"
            )
        return self

    @property
    def precision(self) -> dict:
        return {"image": self.image.precision, "text": self.text.precision}

    def in_language(self, lang: str) -> OnnxEncoder:
        """This encoder reading texts as `lang` (NLLB-CLIP; `OnnxTower.in_language`)."""
        out = copy.copy(self)
        out.text = self.text.in_language(lang)
        out.model = dataclasses.replace(self.model, text=out.text)
        return out

    def describe(self) -> dict:
        identity = without_runtime(self.entry.manifest["identity"])
        return {
            **identity,
            "model": self.name,
            "logit_scale": self.logit_scale,
            "runtime": "onnx",
            "precision": self.precision,
            "device": self.device,
            **({"language": self.text.language} if self.text.language else {}),
        }
