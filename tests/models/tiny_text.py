"""A tiny XLM-RoBERTa base model (config + SentencePiece tokenizer trained here, offline), the shape
open_clip's multilingual CLIPs build their text tower from (`text_cfg.hf_model_name`)."""

from __future__ import annotations

import io
from pathlib import Path

SMALL = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, max_position_embeddings=82)


def make_xlmr_base(out: Path, texts: list[str]) -> Path:
    """`out` holding an XLMRobertaConfig (width 64) and an XLMRobertaTokenizer whose vocabulary was
    trained on `texts`; returns `out`."""
    import sentencepiece as spm
    from transformers import XLMRobertaConfig, XLMRobertaTokenizer

    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts[:4] * 20 + ["el perro corre", "la playa", "red car"] * 20),
        model_writer=buf,
        vocab_size=120,
        model_type="unigram",
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        character_coverage=1.0,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(1, sp.get_piece_size())]
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]  # XLM-R's fairseq order
    tok = XLMRobertaTokenizer(vocab=specials + pieces + [("<mask>", 0.0)])
    tok.save_pretrained(out)
    XLMRobertaConfig(vocab_size=len(tok), hidden_size=64, **SMALL).save_pretrained(out)
    return out
