"""ONNX Runtime's transformer optimizer on an exported transformer tower (CLIP's ViT).

It fuses each layer's attention into one `Attention` op, which dynamic int8 then turns into
`QAttention`. It also fuses residual Add + LayerNorm into `SkipLayerNormalization`, which ran
~2.5x slower than the Add + LayerNormalization it replaces here (ORT 1.32, CPU), so those are
split back. The library is the optimizer; only that split is ours (a dozen lines of graph edit).
"""

from __future__ import annotations

import logging
from pathlib import Path


def split_skip_layernorm(graph) -> int:
    """Replace every SkipLayerNormalization node by Add(+bias) + Add(skip) + LayerNormalization."""
    from onnx import helper

    nodes, n_split = [], 0
    for node in graph.node:
        if node.op_type != "SkipLayerNormalization":
            nodes.append(node)
            continue
        n_split += 1
        x, skip, gamma, beta = node.input[:4]
        bias = node.input[4] if len(node.input) > 4 else ""
        eps = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), 1e-12)
        total = node.output[3] if len(node.output) > 3 and node.output[3] else f"{node.name}_sum"
        if bias:
            nodes.append(helper.make_node("Add", [x, bias], [f"{node.name}_biased"], name=f"{node.name}_bias"))
            x = f"{node.name}_biased"
        nodes.append(helper.make_node("Add", [x, skip], [total], name=f"{node.name}_add"))
        nodes.append(
            helper.make_node(
                "LayerNormalization",
                [total, gamma, beta],
                [node.output[0]],
                name=f"{node.name}_ln",
                axis=-1,
                epsilon=eps,
            )
        )
    del graph.node[:]
    graph.node.extend(nodes)
    return n_split


def fuse_transformer(src: Path, dst: Path, model_type: str, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Write the fused graph of `src` to `dst`; returns the fused-op counts (empty: nothing fused)."""
    from onnxruntime.transformers.optimizer import optimize_model

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    opt = optimize_model(
        str(src), model_type=model_type, num_heads=num_heads, hidden_size=hidden_size, opt_level=0, use_gpu=False
    )
    stats = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
    split_skip_layernorm(opt.model.graph)
    stats.pop("SkipLayerNormalization", None)
    opt.save_model_to_file(str(dst))
    return stats
