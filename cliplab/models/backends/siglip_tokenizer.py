"""SigLIP 1's SentencePiece-only tokenizer as a `tokenizers` one, so its text tower can run on ONNX.

transformers 5 has no fast SigLIP tokenizer, and SigLIP 1 checkpoints ship only `spiece.model`. The
slow `SiglipTokenizer` canonicalises a text (lowercase, ASCII punctuation removed, whitespace runs
collapsed, stripped), puts one "▁" before it and encodes it with SentencePiece without a dummy
prefix, then appends </s>. The same steps as `tokenizers` pieces: those normalisers, the model's
own precompiled NFKC map, spaces as "▁", a Unigram model with the model's pieces and scores, and
a "$A </s>" template. Written here because no library converts this tokenizer; every conversion is
checked against the slow tokenizer on PROBES (many scripts, punctuation, odd spaces, over-long
text) and refused (the model then runs on torch) when a single token differs.
"""

from __future__ import annotations

import string

PROBES = (
    "a photo of a dog",
    "Ein Hund läuft über die Wiese",
    "一只猫在沙发上睡觉",
    "Кошка спит на диване",
    "Hello, World!  It's 5 p.m. -- ok?",
    "  spaces   everywhere  ",
    "",
    "Ünïcödé ﬁ ligature and ＦＵＬＬ width",
    "tabs\tand\nnewlines",
    "“quotes” ‘single’ — dash; e-mail: a@b.c",
    "مرحبا بالعالم",
    "two people on a beach at sunset " * 20,
)
PUNCTUATION = "[" + "".join("\\" + c for c in string.punctuation) + "]"


def fast_siglip_tokenizer(slow):
    """A `PreTrainedTokenizerFast` equal to `slow` (a SiglipTokenizer) on PROBES, or None."""
    from sentencepiece import sentencepiece_model_pb2
    from tokenizers import Regex, Tokenizer, normalizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(slow.sp_model.serialized_model_proto())
    if proto.trainer_spec.model_type != proto.trainer_spec.UNIGRAM or proto.trainer_spec.byte_fallback:
        return None
    tok = Tokenizer(Unigram([(p.piece, p.score) for p in proto.pieces], unk_id=proto.trainer_spec.unk_id))
    steps = [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    if getattr(slow, "do_lower_case", True):
        steps.insert(0, normalizers.Lowercase())
    steps.insert(len(steps) - 2, normalizers.Replace(Regex(PUNCTUATION), ""))
    if proto.normalizer_spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap))
    steps += [normalizers.Replace(" ", "▁"), normalizers.Prepend("▁")]
    tok.normalizer = normalizers.Sequence(steps)
    eos = str(slow.eos_token)
    tok.post_processor = processors.TemplateProcessing(single=f"$A {eos}", special_tokens=[(eos, slow.eos_token_id)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=eos, pad_token=slow.pad_token, unk_token=slow.unk_token
    )
    same = all(fast(t)["input_ids"] == slow(t)["input_ids"] for t in PROBES)
    return fast if same else None
