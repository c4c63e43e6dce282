"""open_clip's Hugging Face text tokenizers: where they are read from, and query languages.

NLLB-CLIP reads a text after its FLORES-200 code.

NLLB's tokenizer puts the source language's code token first (`deu_Latn Ein Hund … </s>`), and
its `src_lang` decides which. open_clip's `HFTokenizer.set_language` calls the tokenizer's
`set_src_lang_special_tokens`, which transformers 5 undoes at the next call (it switches back to
`src_lang` before every encode); setting `src_lang` itself is what NLLB's own documentation does
(`from_pretrained(..., src_lang="deu_Latn")`), and what open_clip's tokenizer built with
`get_tokenizer(..., src_lang=...)` does. Each language gets its own tokenizer copy: encoding
stays free of shared mutable state under a threaded server.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from cliplab.models.specs import OPEN_CLIP_CONFIG

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def takes_language(oc_tokenizer) -> bool:
    """Whether this open_clip tokenizer prefixes a source-language code (NLLB-style HF tokenizers)."""
    hf = getattr(oc_tokenizer, "tokenizer", None)
    return hf is not None and hasattr(hf, "src_lang") and callable(getattr(hf, "set_src_lang_special_tokens", None))


def language_codes(oc_tokenizer) -> list[str]:
    hf = oc_tokenizer.tokenizer
    specials = getattr(hf, "extra_special_tokens", None) or getattr(hf, "additional_special_tokens", None) or []
    return [str(t) for t in specials if "_" in str(t)]


def tokenizer_in(oc_tokenizer, lang: str):
    """A copy of an open_clip HFTokenizer that reads texts as `lang` (CliplabError for an unknown code)."""
    codes = language_codes(oc_tokenizer)
    if lang not in codes:
        from cliplab.models.language import unknown_code

        raise unknown_code(lang, codes)
    out = copy.copy(oc_tokenizer)
    out.tokenizer = copy.deepcopy(oc_tokenizer.tokenizer)
    out.tokenizer.src_lang = lang
    return out


def open_clip_tokenizer(oc, folder: Path):
    """open_clip's tokenizer for a checkpoint folder in hub layout.

    open_clip reads an HF text tower's tokenizer from the checkpoint folder itself (`local-dir:`), but
    hub repos of such checkpoints may hold only the weights and open_clip_config.json; then the
    tokenizer its text_cfg names (`hf_tokenizer_name`: a hub id in the HF cache, or a folder) is read,
    as open_clip does for an `hf-hub:` model."""
    try:
        text_cfg = json.loads((folder / OPEN_CLIP_CONFIG).read_text()).get("model_cfg", {}).get("text_cfg", {})
    except (OSError, ValueError, AttributeError):
        text_cfg = {}
    name = text_cfg.get("hf_tokenizer_name")
    if not name or any((folder / f).is_file() for f in TOKENIZER_FILES):
        return oc.get_tokenizer(f"local-dir:{folder}")
    from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer

    return HFTokenizer(
        name,
        context_length=text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH),
        tokenizer_mode=text_cfg.get("tokenizer_mode"),
        **text_cfg.get("tokenizer_kwargs", {}),
    )
