"""cliplab: CLIP-style image–text models — embed, zero-shot classify, search, compare, train, evaluate.

    import cliplab
    enc = cliplab.load_encoder("lite")
    res = cliplab.embed(["photos/"], enc)
    cls = cliplab.classify(["cat.jpg"], "cat,dog,car")
"""
from cliplab.api import Classification, classify, embed, similarity
from cliplab.errors import CliplabError, DataError, ImageError, ModelNotFoundError
from cliplab.models import Encoder, load_encoder
from cliplab.pipeline import EmbedResult, embed_images, embed_texts

__version__ = "0.1.0"
__all__ = ["Classification", "CliplabError", "DataError", "EmbedResult", "Encoder", "ImageError",
           "ModelNotFoundError", "classify", "embed", "embed_images", "embed_texts", "load_encoder", "similarity"]
