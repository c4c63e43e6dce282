"""The CLIP vision tower's export form computes what the tower computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cliplab.models.backends.clip_export import PatchLinear, VisionExport, cls_layer, vision_fusion


@pytest.fixture(scope="module")
def encoder(tiny_clip_dir):
    from cliplab.models.loader import load_encoder

    return load_encoder(str(tiny_clip_dir))


def test_patch_linear_equals_the_strided_conv():
    torch.manual_seed(0)
    for bias in (True, False):
        conv = torch.nn.Conv2d(3, 16, kernel_size=8, stride=8, bias=bias)
        x = torch.randn(2, 3, 32, 40)
        with torch.no_grad():
            want, got = conv(x), PatchLinear(conv)(x)
        assert got.shape == want.shape == (2, 16, 4, 5)
        assert torch.allclose(got, want, atol=1e-5)


def test_vision_export_equals_get_image_features(encoder):
    tower = encoder.model.image
    attn = tower.clip.vision_model.config._attn_implementation
    x = torch.from_numpy(tower.example_inputs(3)["pixel_values"])
    export = tower.export_module()
    assert isinstance(export, VisionExport)
    assert isinstance(export.vision.embeddings.patch_embedding, PatchLinear)
    assert export.vision.config._attn_implementation == "eager"
    with torch.no_grad():
        want, got = tower.torch_module()(x), export(x)
    assert np.abs(got.numpy() - want.numpy()).max() < 1e-5
    # the tower's own model is untouched: still its conv and its attention implementation
    assert isinstance(tower.clip.vision_model.embeddings.patch_embedding, torch.nn.Conv2d)
    assert tower.clip.vision_model.config._attn_implementation == attn
    n = tower.clip.config.vision_config.num_hidden_layers
    assert len(tower.clip.vision_model.encoder.layers) == n and len(export.vision.encoder.layers) == n - 1


def test_cls_layer_is_the_layers_first_token(encoder):
    """The last layer computed for the CLS token alone equals the full layer's token 0."""
    layer = encoder.model.image.clip.vision_model.encoder.layers[-1]
    d = layer.embed_dim
    h = torch.randn(3, 10, d, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = layer(h, None)
        want = (want[0] if isinstance(want, tuple) else want)[:, 0]
        got = cls_layer(layer, h)
    assert got.shape == (3, d)
    assert torch.allclose(got, want, atol=1e-5)


def test_fusion_hints_come_from_the_config(encoder):
    cfg = encoder.model.image.clip.config.vision_config
    hints = vision_fusion(encoder.model.image.clip)
    assert hints == {"model_type": "clip", "num_heads": cfg.num_attention_heads, "hidden_size": cfg.hidden_size}
    assert encoder.model.text.onnx_fusion() is None  # only the vision graph is fused
