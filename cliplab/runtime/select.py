"""`load(spec, runtime, precision, device)`: the encoder a command runs, on the runtime asked for.

- runtime `auto` = ONNX Runtime when onnxruntime is installed (it is a dependency), else torch.
- ONNX: the model's towers are exported once into the cache (see cache.py); later loads find the
  entry by a key computed without torch (keys.py), so they never import torch or transformers.
- precision `int8` = int8 where it keeps cosine ≥ 0.999 to fp32, or where a model cliplab trained
  declares it by task quality (quantize.py), fp32 elsewhere; the encoder's description says which
  tower ran at which precision, and the manifest which rule decided.
- `preclip` (fitted on the data it embeds) and specs the key table does not know run on torch, and
  their description says so.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from cliplab.data.atomic import atomic_copy, atomic_write_bytes
from cliplab.errors import CliplabError
from cliplab.models import specs
from cliplab.models.core.base import Encoder
from cliplab.runtime import keys, without_runtime
from cliplab.runtime.cache import Entry, prune_superseded
from cliplab.runtime.device import check_device, ort_device, torch_device
from cliplab.runtime.export import DEFAULT_OPSET, export_checked

RUNTIMES = ("auto", "torch", "onnx")
PRECISIONS = ("fp32", "int8")
SAMPLE_TEXTS = [
    "a photo of a dog.",
    "a red car parked on a quiet street at night",
    "cat",
    "two children playing football on the beach under a cloudy sky",
    "a bowl of soup",
    "an aerial view of a city",
    "a black and white portrait of an old man smiling",
    "snow",
]


def check_runtime(runtime: str | None) -> str:
    r = (runtime or "auto").strip().lower()
    if r not in RUNTIMES:
        raise CliplabError(f"unknown runtime {runtime!r}: use auto, torch or onnx")
    return r


def check_precision(precision: str | None) -> str:
    p = (precision or "fp32").strip().lower()
    if p not in PRECISIONS:
        raise CliplabError(f"unknown precision {precision!r}: use fp32 or int8")
    return p


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_torch(spec: str, device: str = "auto", note: str | None = None) -> Encoder:
    """The torch encoder of a spec (the registry's own loader), tagged with the runtime that runs it."""
    from cliplab.models import loader

    dev = torch_device(device)
    enc = loader.load_encoder(spec)
    if dev != "cpu":
        try:
            enc.to(dev)
        except CliplabError as e:
            if check_device(device) == "cuda":  # asked for by name: say why not, never run elsewhere
                raise CliplabError(
                    f"--device cuda: {e}; use --runtime onnx with onnxruntime-gpu, or --device cpu"
                ) from None
            enc.to("cpu")  # auto: back to the CPU (a tower may have moved already); the output says so
            dev = "cpu"
    enc.runtime_info = {"runtime": "torch", "precision": "fp32", "device": dev, **({"note": note} if note else {})}
    return enc


def load(
    spec: str = "lite",
    runtime: str | None = "auto",
    precision: str | None = "fp32",
    device: str | None = "auto",
    notify: Callable[[str], None] | None = _stderr,
    opset: int = DEFAULT_OPSET,
) -> Encoder:
    runtime, precision, device = check_runtime(runtime), check_precision(precision), check_device(device)
    spec = (spec or "lite").strip()
    if runtime == "auto":
        runtime = "onnx" if onnx_available() else "torch"
    if runtime == "torch":
        if precision == "int8":
            raise CliplabError("--precision int8 needs the ONNX runtime (--runtime onnx or auto)")
        return load_torch(spec, device)
    if not onnx_available():
        raise CliplabError(
            "--runtime onnx: onnxruntime is not installed (pip install onnxruntime), or use --runtime torch"
        )
    key = keys.cache_key(spec, opset)
    if key is None:
        why = (
            "preclip is fitted on the data it embeds" if spec.startswith("preclip") else "no ONNX export for this model"
        )
        return load_torch(spec, device, note=f"{why}: runs on torch")
    dev = ort_device(device)
    entry = Entry(key)
    notify = notify or (lambda _msg: None)

    def prepare(force: bool = False) -> dict | None:
        with entry.lock():
            m = None if force else entry.load()
            if m is None:
                notify("preparing the fast path (ONNX export, once) …")
                m = build_entry(entry, spec, opset)
            if m is not None and precision == "int8" and needs_int8(m):
                notify("preparing the int8 graphs (once) …")
                m = add_int8(entry, m)
            return m

    m = entry.load()
    if m is None or (precision == "int8" and needs_int8(m)):
        m = prepare()
    if m is None:
        return load_torch(spec, device, note="this model has no towers to export: runs on torch")
    from cliplab.runtime.session import OnnxEncoder

    name = specs.resolve_auto() if spec == "auto" else spec
    return OnnxEncoder(entry, name, precision, dev, repair=lambda: prepare(force=True))


# --- building an entry (torch is imported here, once per model) -------------------------------------
def build_entry(entry: Entry, spec: str, opset: int = DEFAULT_OPSET) -> dict | None:
    """Export both towers of `spec` into `entry`, check them, write the manifest last (hold the lock)."""
    import torch

    enc = load_torch(spec, "cpu")
    model = getattr(enc, "model", None)
    if model is None or getattr(model, "image", None) is None or getattr(model, "text", None) is None:
        return None
    entry.clear()
    entry.dir.mkdir(parents=True, exist_ok=True)
    towers = {}
    for side in ("image", "text"):
        tower = getattr(model, side)
        diff = export_checked(tower, entry.path(f"{side}.onnx"), opset)
        cfg = dict(tower.runtime_config())
        if side == "text":
            try:
                _store_tokenizer(entry, tower, cfg)
            except CliplabError:  # a tokenizer with no fast form (a SigLIP 1 whose conversion failed its check)
                entry.clear()
                return None

        names = list(tower.example_inputs(2))
        _save_inputs(entry, side, calibration_inputs(tower, names))
        towers[side] = {
            "name": tower.name,
            "dim": int(tower.dim),
            "batch_size": int(tower.batch_size),
            "output": tower.output_name,
            "inputs": names,
            "fingerprint": tower.fingerprint(),
            "config": cfg,
            "max_abs_diff": diff,
            "graphs": {"fp32": entry.graph_record(f"{side}.onnx")},
        }
    identity = without_runtime(enc.describe())
    m = entry.write_manifest(
        {
            "spec": spec,
            "name": enc.name,
            "dim": int(enc.dim),
            "logit_scale": float(enc.logit_scale),
            "identity": identity,
            "opset": opset,
            "torch": torch.__version__,
            "towers": towers,
        }
    )
    prune_superseded(entry, spec)
    return m


def needs_int8(m: dict) -> bool:
    """True when a tower has no int8 record made by this version of quantize.py (its rules)."""
    from cliplab.runtime.quantize import INT8_VERSION

    return any((t["graphs"].get("int8") or {}).get("version") != INT8_VERSION for t in m["towers"].values())


def add_int8(entry: Entry, m: dict) -> dict:
    """int8 graphs next to the fp32 ones, or the reason a tower keeps fp32, each with the rule that
    decided it: task quality for a tower the model's cliplab.json declares, else cosine (hold the lock)."""
    from cliplab.runtime.quantize import INT8_VERSION, declared, make_int8

    folder = keys.checkpoint_folder(m.get("spec", ""))
    recipes = declared(folder)
    for side, rec in m["towers"].items():
        if (rec["graphs"].get("int8") or {}).get("version") == INT8_VERSION:
            continue
        data = np.load(entry.path(f"{side}.inputs.npz"))
        inputs = {k: data[k] for k in rec["inputs"]}
        src, dst = entry.path(f"{side}.onnx"), entry.path(f"{side}.int8.onnx")
        res = make_int8(src, dst, inputs, rec["output"], recipe=recipes.get(side), folder=folder)
        base = {"version": INT8_VERSION, "rule": res["rule"]}
        if res.pop("ok"):
            rec["graphs"]["int8"] = {**entry.graph_record(f"{side}.int8.onnx"), **res, **base}
        else:
            dst.unlink(missing_ok=True)
            rec["graphs"]["int8"] = {"fallback": res["reason"], **base}
    return entry.write_manifest(m)


def _store_tokenizer(entry: Entry, tower, cfg: dict) -> None:
    """Copy the text tower's tokenizer.json into the entry; learn its pad id from the tower itself."""
    src = cfg.get("tokenizer_file")
    if src:
        atomic_copy(src, entry.path("tokenizer.json"))
    else:  # a HF fast tokenizer serialises itself
        backend = getattr(getattr(tower, "tokenizer", None), "backend_tokenizer", None)
        if backend is None:
            raise CliplabError(f"{tower.name}: no tokenizer.json to run the text tower without torch")
        atomic_write_bytes(entry.path("tokenizer.json"), backend.to_str().encode())
    cfg["tokenizer_file"] = "tokenizer.json"
    if "pad_id" not in cfg:
        tok = tower.tokenize(["a", "a much longer sentence than the first one"])
        pads = tok["input_ids"][0][np.asarray(tok["attention_mask"][0]) == 0]
        cfg["pad_id"] = int(pads[0]) if len(pads) else 0


def _save_inputs(entry: Entry, side: str, inputs: dict[str, np.ndarray]) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, **inputs)
    atomic_write_bytes(entry.path(f"{side}.inputs.npz"), buf.getvalue())


def synthetic_images(n: int = 8, size: int = 320, seed: int = 0) -> list[Image.Image]:
    """Deterministic photo-like test cards (gradients, shapes, noise) for int8 checks."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y, x = np.mgrid[0:size, 0:size] / size
        base = np.stack([x, y, (x + y) / 2], axis=-1) * rng.uniform(80, 255, 3) + rng.normal(0, 12, (size, size, 3))
        im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for _ in range(4 + i):
            a, b = sorted(rng.integers(0, size, 2)), sorted(rng.integers(0, size, 2))
            box = (int(a[0]), int(b[0]), int(a[1]) + 4, int(b[1]) + 4)
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
        out.append(im)
    return out


def calibration_inputs(tower, names: list[str]) -> dict[str, np.ndarray]:
    """Inputs for the int8 check: synthetic images / sample sentences + the tower's own examples."""
    ex = tower.example_inputs(4)
    if tower.modality == "image":
        imgs = np.stack([tower.preprocess(im) for im in synthetic_images()]).astype(np.float32)
        return {names[0]: np.concatenate([imgs, ex[names[0]].astype(np.float32)])}
    tok = tower.tokenize(SAMPLE_TEXTS)
    return {n: np.asarray(tok[n], dtype=np.int64) for n in names}
