"""cliplab: CLIP-style image–text models — embed, zero-shot classify, search, compare, train, evaluate.

    import cliplab
    enc = cliplab.load_encoder("lite")
    res = cliplab.embed(["photos/"], enc)
    cls = cliplab.classify(["cat.jpg"], "cat,dog,car")
    hits = cliplab.Collection("photos/").search("a dog on a beach")

Names are imported lazily so that `import cliplab` (and every CLI start) does not pay for torch.
"""

from cliplab.lazy import lazy_getattr

__version__ = "0.5.0"

_EXPORTS = {
    "Classification": "cliplab.api",
    "classify": "cliplab.api",
    "embed": "cliplab.api",
    "similarity": "cliplab.api",
    "CliplabError": "cliplab.errors",
    "DataError": "cliplab.errors",
    "ImageError": "cliplab.errors",
    "ModelNotFoundError": "cliplab.errors",
    "Encoder": "cliplab.models",
    "load_encoder": "cliplab.runtime",
    "EmbedResult": "cliplab.pipeline",
    "embed_images": "cliplab.pipeline",
    "embed_texts": "cliplab.pipeline",
    "Collection": "cliplab.index",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr("cliplab", _EXPORTS)
