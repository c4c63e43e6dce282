"""CLIP's vision tower as ONNX Runtime runs it fastest: the same math, traced in another form.

- Eager attention. ONNX Runtime's transformer optimizer recognises the eager pattern and fuses each
  layer into one `Attention` op (int8: `QAttention`); the SDPA export is left as a dozen small ops.
- The patch embedding (a Conv2d whose kernel equals its stride) as reshape + Linear. A MatMul gets
  int8 weights; ORT's int8 convolution (ConvInteger) is slower than its fp32 one.
- The last layer for the CLS token only: the image vector is read from that one token, so the
  other tokens' attention output and MLP in the last layer are never used (~6 % of ViT-B/32's
  multiply-adds). Their keys and values are still computed: the CLS token attends to them.
Against the plain export: +14 % images/s for the int8 ViT-B/32 on 2 cores in two runs, of which
the CLS-only layer gave +6 and +9 % (benchmarks/int8_vit.py section 2, docs/benchmarks.md). The
exported graph is still checked against the unmodified torch tower.
"""

from __future__ import annotations

import copy

import torch


class PatchLinear(torch.nn.Module):
    """Conv2d(kernel = stride = P) as non-overlapping patches @ W: returns what the conv returns."""

    def __init__(self, conv: torch.nn.Conv2d):
        super().__init__()
        self.p = int(conv.kernel_size[0])
        w = conv.weight.detach()  # (D, C, P, P)
        self.lin = torch.nn.Linear(w[0].numel(), w.shape[0], bias=conv.bias is not None)
        self.lin.weight.data = w.reshape(w.shape[0], -1).clone()
        if conv.bias is not None:
            self.lin.bias.data = conv.bias.detach().clone()

    @property
    def weight(self) -> torch.Tensor:  # CLIPVisionEmbeddings reads the dtype from here
        return self.lin.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p, gh, gw = self.p, h // self.p, w // self.p
        patches = x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * p * p)
        return self.lin(patches).transpose(1, 2).reshape(b, -1, gh, gw)


def cls_layer(layer, h: torch.Tensor) -> torch.Tensor:
    """A CLIPEncoderLayer's output for token 0 only, (B, N, D) → (B, D): the same math as the
    layer (pre-LN, eager attention, residuals), with one query instead of N."""
    a = layer.self_attn
    b, n, d = h.shape
    x = layer.layer_norm1(h)
    heads = (b, -1, a.num_heads, a.head_dim)
    q = a.q_proj(x[:, :1]).view(heads).transpose(1, 2)
    k, v = a.k_proj(x).view(heads).transpose(1, 2), a.v_proj(x).view(heads).transpose(1, 2)
    w = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * a.scale, dim=-1)
    y = h[:, 0] + a.out_proj(torch.matmul(w, v).transpose(1, 2).reshape(b, d))
    return y + layer.mlp(layer.layer_norm2(y))


class VisionExport(torch.nn.Module):
    """pixel_values → visual_projection(pooled output): `get_image_features`, on copies of the weights."""

    def __init__(self, clip, cls_only: bool = True):
        super().__init__()
        self.vision = copy.deepcopy(clip.vision_model)
        self.projection = copy.deepcopy(clip.visual_projection)
        self.vision.config._attn_implementation = "eager"
        emb = self.vision.embeddings
        conv = emb.patch_embedding
        if isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == conv.stride and conv.padding in ((0, 0), 0):
            emb.patch_embedding = PatchLinear(conv)
        self.last = None  # cls_only=False: every token through every layer (benchmarks/int8_vit.py)
        if cls_only:
            layers = list(self.vision.encoder.layers)
            self.last = layers[-1]
            self.vision.encoder.layers = torch.nn.ModuleList(layers[:-1])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        v = self.vision
        h = v.encoder(inputs_embeds=v.pre_layrnorm(v.embeddings(pixel_values))).last_hidden_state
        cls = h[:, 0] if self.last is None else cls_layer(self.last, h)
        return self.projection(v.post_layernorm(cls))


def vision_fusion(clip) -> dict:
    """What ONNX Runtime's transformer optimizer needs to fuse this graph."""
    cfg = clip.config.vision_config
    return {"model_type": "clip", "num_heads": int(cfg.num_attention_heads), "hidden_size": int(cfg.hidden_size)}
