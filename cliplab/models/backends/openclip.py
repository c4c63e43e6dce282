"""open_clip backend: an `open_clip` model (CLIP, CustomTextCLIP: ViT, ConvNeXt, MobileCLIP, XLM-R text) as two towers.

Specs (parsed in specs.py): a folder in open_clip's hub layout (`open_clip_config.json` +
`open_clip_model.safetensors` | `open_clip_pytorch_model.bin`), `hf-hub:ORG/NAME` read from the local
HF cache only (`cliplab models pull` downloads), and `open_clip:ARCH/TAG` resolved through open_clip's
pretrained table to its hub repo in the cache.

open_clip and timm import torchvision at module level, only for their training/eval transforms and a
FrozenBatchNorm2d isinstance check; torchvision's wheels here need a CUDA torch. So `import_open_clip`
imports them once behind a stand-in `torchvision` whose names are inert placeholders, then removes the
stand-in: `import torchvision` elsewhere still fails as before. Preprocessing is ours (numpy + PIL,
`ResizeCropNormalize` with torchvision's semantics) from open_clip's own per-model preprocess config.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.abc
import importlib.machinery
import json
import sys
import threading
import types
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from cliplab.data.digest import short_digest
from cliplab.errors import CliplabError, ModelNotFoundError
from cliplab.models.backends.clip_hf import _one_line, _weights_digest
from cliplab.models.core.preprocess import ResizeCropNormalize
from cliplab.models.core.quiet import quiet
from cliplab.models.core.tower import EXAMPLE_TEXTS, Model, Tower, TowerEncoder, image_runtime_config, random_pixels
from cliplab.models.specs import OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS, Spec

INTERPOLATION = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}
_LOCK = threading.Lock()


# --- importing open_clip without torchvision ---------------------------------------------------------
class _Inert(type):
    """A placeholder class: any attribute is another placeholder; instantiating one says why it failed."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _placeholder(name)


def _placeholder(name: str) -> type:
    def _init(self, *a, **k):
        raise RuntimeError(f"torchvision is not installed ({name} is not available)")

    return _Inert(name, (), {"__init__": _init, "__module__": "torchvision"})


class _InertModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _placeholder(name)
        setattr(self, name, value)
        return value


class _StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _InertModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def import_open_clip():
    """The `open_clip` module (and timm), importable with or without torchvision installed."""
    with _LOCK:
        if "open_clip" in sys.modules:
            return sys.modules["open_clip"]
        try:
            import torchvision  # noqa: F401  a working torchvision needs no stand-in
        except Exception:  # noqa: BLE001 absent, or a wheel built for another torch
            for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
                del sys.modules[k]
            finder = _StandIn()
            sys.meta_path.insert(0, finder)
            try:
                with quiet():
                    import open_clip
            except ImportError as e:
                raise ModelNotFoundError(f"open_clip models need open-clip-torch and timm (make setup): {e}") from None
            finally:
                sys.meta_path.remove(finder)
                for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
                    del sys.modules[k]
                _forget_torchvision()
            return open_clip
        import open_clip

        return open_clip


def _forget_torchvision() -> None:
    """transformers caches "is torchvision available?" (lru_cache); asked while the stand-in was there,
    it would later import torchvision for real (e.g. on loading an XLM-R text tower) and fail."""
    utils = sys.modules.get("transformers.utils.import_utils")
    for name in ("is_torchvision_available", "is_torchvision_v2_available"):
        getattr(getattr(utils, name, None), "cache_clear", lambda: None)()


# --- preprocessing -------------------------------------------------------------------------------------
def preprocess_from(cfg: dict) -> ResizeCropNormalize:
    """open_clip's PreprocessCfg dict → the same eval transform (torchvision semantics) in numpy."""
    size = cfg.get("size", 224)
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise ModelNotFoundError(f"open_clip model with a non-square input {tuple(size)} is not supported")
        size = size[0]
    mode = cfg.get("resize_mode", "shortest")
    if mode not in ("shortest", "squash"):
        raise ModelNotFoundError(f"open_clip resize_mode {mode!r} is not supported (shortest, squash are)")
    interp = cfg.get("interpolation", "bicubic")
    if interp not in INTERPOLATION:
        raise ModelNotFoundError(f"open_clip interpolation {interp!r} is not supported")
    return ResizeCropNormalize(
        shortest_edge=int(size),
        crop=int(size),
        mean=tuple(float(v) for v in cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))),
        std=tuple(float(v) for v in cfg.get("std", (0.26862954, 0.26130258, 0.27577711))),
        resample=INTERPOLATION[interp],
        resize=mode,
        center="round",
    )


# --- towers --------------------------------------------------------------------------------------------
class _ImageFeatures(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.encode_image(pixel_values)


class _TextFeatures(torch.nn.Module):
    """Pads input_ids (padded to the longest text by the ONNX runtime) to the context length inside
    the graph: open_clip's CLIP text tower adds all its positional embeddings."""

    def __init__(self, model, length: int, pad_id: int):
        super().__init__()
        self.model, self.length, self.pad_id = model, length, pad_id

    def forward(self, input_ids):
        ids = torch.cat([input_ids, input_ids.new_full((input_ids.shape[0], self.length), self.pad_id)], 1)
        return torch.nn.functional.normalize(self.model.encode_text(ids[:, : self.length]), dim=-1)


class _SlowPath(torch.nn.Module):
    """Runs a module with nn.MultiheadAttention's inference fast path off: its fused kernel
    (aten::_native_multi_head_attention) has no ONNX export; the plain path computes the same."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, *inputs):
        before = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return self.inner(*inputs)
        finally:
            torch.backends.mha.set_fastpath_enabled(before)


class OpenClipImageTower(Tower):
    modality = "image"
    batch_size = 32

    def __init__(self, model, preprocess: ResizeCropNormalize, weights, dim: int):
        self.model, self._preprocess, self.weights, self.dim = model, preprocess, weights, dim
        self.name = "open_clip-vision"

    def fingerprint(self) -> str:
        return short_digest(f"open_clip-image|{self.weights()}|{image_runtime_config(self._preprocess)}")

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self._preprocess(image)

    def preprocess_into(self, image: Image.Image, out: np.ndarray) -> None:
        self._preprocess(image, out=out)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(next(self.model.parameters()).device)
        with torch.inference_mode():
            return self.model.encode_image(x).float().cpu().numpy()

    def to(self, device: str) -> OpenClipImageTower:
        self.model.to(device)  # one model shared by both towers
        return self

    def torch_module(self):
        return _ImageFeatures(self.model).eval()

    def export_module(self):
        return _SlowPath(self.torch_module()).eval()

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return random_pixels(n, self._preprocess.crop)

    def runtime_config(self) -> dict:
        return image_runtime_config(self._preprocess)


class OpenClipTextTower(Tower):
    """Texts through open_clip's own tokenizer (SimpleTokenizer, or an HF one for XLM-R text towers).

    The graph takes input_ids padded to the longest text: open_clip pools at the EOT token behind a
    causal mask (CLIP) or masks pad tokens (HF text), so trailing padding never changes a vector."""

    modality = "text"
    output_name = "text_embedding"
    batch_size = 256

    def __init__(self, model, tokenizer, weights, dim: int, language: str | None = None):
        self.model, self.oc_tokenizer, self.weights, self.dim = model, tokenizer, weights, dim
        self.language = language  # NLLB's source-language code when a caller chose one (openclip_text.py)
        self.max_length = int(tokenizer.context_length)
        hf = getattr(tokenizer, "tokenizer", None)
        self.hf = hf is not None and hasattr(hf, "backend_tokenizer")
        self.pad_id = int(hf.pad_token_id) if self.hf else 0
        self.name = "open_clip-text"
        self._fast = hf if self.hf else None

    def fingerprint(self) -> str:
        lang = f"|{self.language}" if self.language else ""
        return short_digest(f"open_clip-text|{self.weights()}|{self.max_length}{lang}")

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """open_clip's tokens, cut to the longest text (the graph pads back to the context length)."""
        ids = self.oc_tokenizer([str(t) for t in texts]).numpy().astype(np.int64)
        mask = (ids != self.pad_id).astype(np.int64)
        if not self.hf:  # SimpleTokenizer pads with 0, which is also a real token id ("!")
            mask = (np.arange(ids.shape[1]) <= ids.argmax(axis=1)[:, None]).astype(np.int64)
        keep = max(1, int(mask.sum(axis=1).max())) if len(ids) else 1
        return {"input_ids": ids[:, :keep], "attention_mask": mask[:, :keep]}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        ids = torch.from_numpy(self.oc_tokenizer([str(t) for t in texts]).numpy().astype(np.int64))
        with torch.inference_mode():
            return self.model.encode_text(ids.to(next(self.model.parameters()).device)).float().cpu().numpy()

    def to(self, device: str) -> OpenClipTextTower:
        self.model.to(device)
        return self

    def torch_module(self):
        return _TextFeatures(self.model, self.max_length, self.pad_id).eval()

    def export_module(self):
        return _SlowPath(self.torch_module()).eval()

    def example_inputs(self, n: int = 2) -> dict[str, np.ndarray]:
        return {"input_ids": self.tokenize([EXAMPLE_TEXTS[i % len(EXAMPLE_TEXTS)] for i in range(n)])["input_ids"]}

    @property
    def tokenizer(self):
        """A Hugging Face fast tokenizer with the same vocabulary: what the ONNX runtime serialises."""
        if self._fast is None:
            self._fast = _clip_fast_tokenizer(self.oc_tokenizer)
        return self._fast

    def runtime_config(self) -> dict:
        # The ONNX runtime tokenises with `tokenizers`: same vocabulary, truncation and padding; it
        # lowercases (CLIP's normaliser) but does not run ftfy / HTML unescaping as open_clip does.
        cfg = {"tokenizer_file": None, "max_length": self.max_length, "pad_id": self.pad_id, "inputs": ["input_ids"]}
        from cliplab.models.backends.openclip_text import takes_language

        if takes_language(self.oc_tokenizer):  # NLLB: the exported tokenizer.json starts every text with this code
            cfg["language"] = str(self.oc_tokenizer.tokenizer.src_lang)
        return cfg


def _clip_fast_tokenizer(tok):
    """open_clip's SimpleTokenizer (the OpenAI BPE) as a transformers CLIPTokenizerFast."""
    from transformers import CLIPTokenizerFast

    ranked = sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])
    with quiet():
        return CLIPTokenizerFast(
            vocab=dict(tok.encoder),
            merges=[tuple(pair) for pair, _ in ranked],
            bos_token=tok.decoder[tok.sot_token_id],  # open_clip spells them <start_of_text>, <end_of_text>
            eos_token=tok.decoder[tok.eot_token_id],
            unk_token=tok.decoder[tok.eot_token_id],
            pad_token="!",
            model_max_length=int(tok.context_length),
        )


# --- the encoder ---------------------------------------------------------------------------------------
class OpenClipEncoder(TowerEncoder):
    def __init__(self, model, tokenizer, name: str, source_dir: Path | None, arch: str, preprocess_cfg: dict):
        self.oc = model.float().eval()
        self.source_dir, self.arch = source_dir, arch
        self._weights: str | None = None
        pre = preprocess_from(preprocess_cfg)
        with torch.inference_mode():
            dim = int(self.oc.encode_text(tokenizer([""])).shape[-1])
        bias = getattr(self.oc, "logit_bias", None)
        self.probability = "sigmoid" if bias is not None else "softmax"
        self.logit_bias = float(bias.detach()) if bias is not None else 0.0
        super().__init__(
            Model(
                OpenClipImageTower(self.oc, pre, self.weights, dim),
                OpenClipTextTower(self.oc, tokenizer, self.weights, dim),
                name=name,
                dim=dim,
                logit_scale=float(self.oc.logit_scale.detach().exp()),
            )
        )

    def weights(self) -> str:
        if self._weights is None:
            files = sorted(self.source_dir.glob("open_clip_*")) if self.source_dir else []
            files = [f for f in files if f.name in OPEN_CLIP_WEIGHTS] or None
            self._weights = _weights_digest(self.oc, self.source_dir if files else None)
        return self._weights

    def in_language(self, lang: str) -> OpenClipEncoder:
        """This model reading texts as `lang`, a FLORES-200 code (NLLB-CLIP); CliplabError for other models."""
        from cliplab.models.backends.openclip_text import takes_language, tokenizer_in

        text = self.model.text
        if not takes_language(text.oc_tokenizer):
            raise CliplabError(f"model {self.name} takes no query language (a language code is for NLLB-CLIP models)")
        out = copy.copy(self)
        tower = OpenClipTextTower(self.oc, tokenizer_in(text.oc_tokenizer, lang), self.weights, self.dim, lang)
        out.model = dataclasses.replace(self.model, text=tower)
        return out

    def describe(self) -> dict:
        d = {
            **super().describe(),
            "backend": "open_clip",
            "architecture": self.arch,
            "image_size": int(self.model.image._preprocess.crop),
            "weights": self.weights(),
        }
        if self.probability != "softmax":
            d.update(probability=self.probability, logit_bias=self.logit_bias)
        if self.model.text.language:
            d["language"] = self.model.text.language
        return d


def _snapshot(hub_id: str) -> Path:
    from cliplab.models.specs import hub_file

    cfg = hub_file(hub_id, OPEN_CLIP_CONFIG)
    if cfg is None or not any(hub_file(hub_id, w) for w in OPEN_CLIP_WEIGHTS):
        raise ModelNotFoundError(
            f"open_clip model {hub_id!r} is not in the Hugging Face cache: run `cliplab models pull hf-hub:{hub_id}` "
            "on a machine with network access (or copy its HF cache folder here)"
        )
    return Path(cfg).parent


def resolve(spec: Spec) -> tuple[Path, str]:
    """A spec → (folder in open_clip's hub layout, architecture name)."""
    if spec.path is not None:
        folder = spec.path
    elif spec.text.startswith("hf-hub:"):
        folder = _snapshot(spec.text[len("hf-hub:") :].strip("/"))
    else:
        arch, _, tag = str(spec.variant).partition("/")
        oc = import_open_clip()
        cfg = oc.get_pretrained_cfg(arch, tag) or {}
        hub = str(cfg.get("hf_hub", "")).strip("/")
        if not hub:
            tags = ", ".join(oc.list_pretrained_tags_by_model(arch)) or "none"
            raise ModelNotFoundError(f"open_clip has no hub checkpoint for {arch}/{tag} (known tags of {arch}: {tags})")
        folder = _snapshot(hub)
    try:
        arch = json.loads((folder / OPEN_CLIP_CONFIG).read_text()).get("arch") or ""  # ours; hub repos: none
    except (OSError, ValueError):
        arch = ""
    if not arch and spec.variant:
        arch = str(spec.variant).partition("/")[0]
    return folder, arch or spec.text.removeprefix("hf-hub:").strip("/").split("/")[-1]


def load_open_clip(spec: Spec) -> OpenClipEncoder:
    from cliplab.models.backends.openclip_text import open_clip_tokenizer

    oc = import_open_clip()
    folder, arch = resolve(spec)
    try:
        with quiet():
            model = oc.create_model(f"local-dir:{folder}", pretrained_text=False)
            tokenizer = open_clip_tokenizer(oc, folder)
    except Exception as e:  # noqa: BLE001 missing or corrupt weights, unknown layers, ...
        raise ModelNotFoundError(f"cannot load open_clip model {spec.text!r}: {_one_line(e)}") from None
    from open_clip.model import get_model_preprocess_cfg

    return OpenClipEncoder(model, tokenizer, spec.text, folder, arch, get_model_preprocess_cfg(model))
