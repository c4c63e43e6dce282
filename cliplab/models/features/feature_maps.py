"""Intermediate layers of the image networks inside towers, as (N, C, h, w) maps.

- EfficientNet (lite, conse, preclip, trained EfficientNet checkpoints): `layer` is an index into
  `_blocks` (negative counts from the end), "stem" (after the first conv) or "head" (the final 1×1
  conv map that the network average-pools into its 1280-d features).
- CLIP ViT (HF CLIP, trained CLIP checkpoints): `layer` is a transformer block (its output hidden
  state), "stem" (patch embeddings) or "head" (the last block); the CLS token is dropped and the
  patch tokens are laid out on their grid.
Image towers expose these through `Tower.feature_map` / `Tower.feature_channels`.
"""

from __future__ import annotations

import numpy as np
import torch

from cliplab.errors import CliplabError


def parse_layer(layer) -> int | str:
    """'head' | 'stem' | an int (or its string) → the layer key used below."""
    if isinstance(layer, (int, np.integer)):
        return int(layer)
    s = str(layer).strip().lower()
    if s in ("head", "last", "final"):
        return "head"
    if s in ("stem", "embeddings"):
        return "stem"
    try:
        return int(s)
    except ValueError:
        raise CliplabError(f"layer must be a block index (e.g. 3 or -2), 'stem' or 'head', not {layer!r}") from None


def block_index(layer, n_blocks: int, what: str) -> int:
    i = layer + n_blocks if layer < 0 else layer
    if not 0 <= i < n_blocks:
        raise CliplabError(
            f"layer {layer} out of range: this {what} has {n_blocks} blocks "
            f"(0..{n_blocks - 1}, or -{n_blocks}..-1), plus 'stem' and 'head'"
        )
    return i


def _tensor(batch) -> torch.Tensor:
    return batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch, np.float32))


def cnn_feature_map(net, x, layer) -> torch.Tensor:
    """EfficientNet input (N, 3, H, W) → the chosen stage's (N, C, h, w) map (same ops as extract_features)."""
    layer = parse_layer(layer)
    with torch.inference_mode():
        h = net._swish(net._bn0(net._conv_stem(_tensor(x))))
        if layer == "stem":
            return h.float()
        n = len(net._blocks)
        last = n - 1 if layer == "head" else block_index(layer, n, "EfficientNet")
        rate0 = net._global_params.drop_connect_rate
        for idx in range(last + 1):
            rate = rate0 * float(idx) / n if rate0 else rate0
            h = net._blocks[idx](h, drop_connect_rate=rate)
        if layer == "head":
            h = net._swish(net._bn1(net._conv_head(h)))
        return h.float()


def cnn_channels(net, layer) -> int:
    layer = parse_layer(layer)
    if layer == "stem":
        return int(net._bn0.num_features)
    if layer == "head":
        return int(net._bn1.num_features)
    return int(net._blocks[block_index(layer, len(net._blocks), "EfficientNet")]._bn2.num_features)


def vit_feature_map(model, x, layer) -> torch.Tensor:
    """CLIP pixel values → the chosen block's patch tokens as an (N, C, g, g) grid (CLS dropped)."""
    layer = parse_layer(layer)
    vision = getattr(model, "vision_model", model)
    n = int(vision.config.num_hidden_layers)
    idx = 0 if layer == "stem" else n if layer == "head" else block_index(layer, n, "ViT") + 1
    with torch.inference_mode():
        out = vision(pixel_values=_tensor(x), output_hidden_states=True)
    tokens = out.hidden_states[idx][:, 1:, :]  # hidden_states[0] = embeddings, [i + 1] = block i
    g = int(round(tokens.shape[1] ** 0.5))
    if g * g != tokens.shape[1]:
        raise CliplabError(f"{tokens.shape[1]} patch tokens do not form a square grid")
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], g, g).float()


def vit_channels(model, layer) -> int:
    layer = parse_layer(layer)
    vision = getattr(model, "vision_model", model)
    if isinstance(layer, int):
        block_index(layer, int(vision.config.num_hidden_layers), "ViT")
    return int(vision.config.hidden_size)
