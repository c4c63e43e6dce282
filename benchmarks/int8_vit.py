"""Where the int8 ViT-B/32's time goes, and how much each runtime choice buys (issue 12).

Four measurements on the random-weight ViT-B/32-shape CLIP that `embed_throughput.py` builds:
 1. interleaved pairs: the naive one-image torch loop, then cliplab's ONNX int8 pipeline, on the same
    photos, --pairs times (the ratio per pair, so the VM's speed drift cancels);
 2. the int8 graph as exported (fused Attention, patch MatMul, last layer for the CLS token only)
    against the same fused form with every token through the last layer, and against the plain
    export of the same tower (SDPA attention, Conv patch embedding), all dynamic int8, interleaved,
    with the batch as 2 concurrent calls × 1 thread and as 1 call × 2 threads;
 3. one batch of 32 as 1 call × 2 threads against 2 concurrent calls × 1 thread (batch_parallelism),
    for the int8 ViT and for `lite`'s fp32 image graph;
 4. ONNX Runtime's own op profile of the int8 graph, the int8 GEMM rate of one 1600×768×3072
    MatMul in isolation (the ceiling the ViT's GEMMs run against), and the share of one QAttention
    that is the attention core rather than its QKV GEMM;
 5. decode and preprocess cost per photo, and the lookup-table normalisation against the arithmetic
    it replaced.
Prints markdown; nothing is written.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/int8_vit.py [--pairs 4] [--n 96]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402
from embed_throughput import clip_b32, naive_loop, naive_model  # noqa: E402

from cliplab import api  # noqa: E402
from cliplab.data.images import load_image  # noqa: E402
from cliplab.models.backends.clip_export import VisionExport  # noqa: E402
from cliplab.runtime import load  # noqa: E402
from cliplab.runtime.session import _make_session  # noqa: E402


def session(path: Path, threads: int):
    """A CPU session with cliplab's own options (`cliplab/runtime/session.py`), `threads` per call."""
    return _make_session(str(path), "cpu", threads)


def rate(run, n_images: int, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        run()
        out.append(n_images / (time.perf_counter() - t))
    return out


def variant_int8(tower, tmp: Path, name: str, module=None) -> Path:
    """The tower exported in another form, dynamic int8: `module=None` traces `torch_module` as is
    (no export form, no fusion); a module is traced and fused as the shipped export is."""
    import torch

    from cliplab.runtime.fuse import fuse_transformer
    from cliplab.runtime.quantize import quantize_dynamic_int8

    src, dst = tmp / f"{name}.onnx", tmp / f"{name}.int8.onnx"
    x = torch.from_numpy(tower.example_inputs(2)["pixel_values"])
    torch.onnx.export(
        (module or tower.torch_module()).eval(), (x,), str(src), input_names=["pixel_values"],
        output_names=[tower.output_name], dynamic_axes={"pixel_values": {0: "batch"}, tower.output_name: {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    if module is not None:
        fuse_transformer(src, src, **tower.onnx_fusion())
    quantize_dynamic_int8(src, dst)
    return dst


def op_profile(path: Path, x: np.ndarray) -> list[tuple[str, float]]:
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads, o.enable_profiling, o.log_severity_level = 2, True, 3
    s = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    for _ in range(3):
        s.run(None, {"pixel_values": x})
    trace = Path(s.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink(missing_ok=True)
    per_op = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    total = sum(per_op.values())
    return [(op, 100 * us / total) for op, us in per_op.most_common(8)]


def gemm_rate(tmp: Path, threads: int) -> float:
    """GOP/s of one dynamic-int8 MatMul (1600×768 @ 768×3072: a ViT-B/32 MLP layer at batch 32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from cliplab.runtime.quantize import quantize_dynamic_int8

    m, k, n = 1600, 768, 3072
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(k, n)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["pixel_values", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n])], [w],
    )  # fmt: skip
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp / "mm.onnx"))
    quantize_dynamic_int8(tmp / "mm.onnx", tmp / "mm8.onnx")
    s, x = session(tmp / "mm8.onnx", threads), np.random.default_rng(1).normal(size=(m, k)).astype(np.float32)
    s.run(None, {"pixel_values": x})
    t, runs = time.perf_counter(), 20
    for _ in range(runs):
        s.run(None, {"pixel_values": x})
    return 2 * m * k * n * runs / (time.perf_counter() - t) / 1e9


def attention_split(path: Path, images: int = 16, rounds: int = 7) -> tuple[float, float]:
    """ms per call (median of `rounds`) of the graph's first QAttention alone, and of its QKV GEMM
    alone (DynamicQuantizeLinear + MatMulIntegerToFloat with the same int8 weights), 1 thread."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.op_type == "QAttention")
    inits = {i.name: i for i in model.graph.initializer}
    w, bias, w_scale, w_zero = (node.input[i] for i in (1, 2, 4, 7))
    quant = helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"])
    heads = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "num_heads")
    hidden = inits[w].dims[0]
    ops = {
        "qattention": helper.make_node(
            "QAttention", ["xq", w, bias, "xs", w_scale, "", "xz", w_zero, ""], ["y"], domain="com.microsoft",
            num_heads=heads,
        ),
        "gemm": helper.make_node(
            "MatMulIntegerToFloat", ["xq", w, "xs", w_scale, "xz", w_zero, bias], ["y"], domain="com.microsoft"
        ),
    }  # fmt: skip
    x = np.random.default_rng(0).normal(size=(images, 50, hidden)).astype(np.float32)
    out = []
    for op in ops.values():
        g = helper.make_graph(
            [quant, op], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 50, hidden])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [inits[n] for n in (w, bias, w_scale, w_zero)],
        )  # fmt: skip
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
        with tempfile.TemporaryDirectory() as tmp:
            onnx.save(m, f"{tmp}/op.onnx")
            s = session(Path(f"{tmp}/op.onnx"), 1)
        s.run(None, {"x": x})
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(10):
                s.run(None, {"x": x})
            times.append((time.perf_counter() - t) / 10 * 1000)
        out.append(statistics.median(times))
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--n", type=int, default=96, help="photos per pipeline run")
    args = ap.parse_args()
    images = sorted(str(p) for p in (require_shared() / "data" / "flickr8k-1k" / "images").glob("*.jpg"))
    paths = images[: args.n]
    d = clip_b32()
    int8 = load(str(d), runtime="onnx", precision="int8")
    lite = load("lite", runtime="onnx")
    x = np.stack([int8.preprocess(im) for im in map(load_image, images[:32])]).astype(np.float32)
    print(f"# int8 ViT-B/32 on this machine\n\nMachine: {machine()}.\n")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, processor = naive_model(d)
        naive_loop(model, processor, paths[:2], tmp)
        api.embed(paths[:8], int8)
        print("## 1. Interleaved pairs (naive loop, then ONNX int8 pipeline)\n")
        print("| pair | naive img/s | int8 img/s | ratio |\n|---|---:|---:|---:|")
        for i in range(args.pairs):
            a = rate(lambda: naive_loop(model, processor, paths, tmp), len(paths), 1)[0]
            b = rate(lambda: api.embed(paths, int8), len(paths), 1)[0]
            print(f"| {i + 1} | {a:.1f} | {b:.1f} | {b / a:.2f}× |")

        print("\n## 2. Export form: shipped graph vs other forms (all dynamic int8), median of 8\n")
        tower = _torch_tower(d)
        graphs = {
            "fused, last layer for CLS only (shipped)": int8.entry.path("image.int8.onnx"),
            "fused, every token in every layer": variant_int8(
                tower, tmp, "all_tokens", VisionExport(tower.clip, cls_only=False)
            ),
            "plain export": variant_int8(tower, tmp, "plain"),
        }
        pool = ThreadPoolExecutor(2)

        def split(s, batch):
            futures = [pool.submit(s.run, None, {"pixel_values": c}) for c in np.array_split(batch, 2)]
            return [f.result() for f in futures]

        forms = {(k, t): session(p, t) for k, p in graphs.items() for t in (1, 2)}
        rates = {k: [] for k in forms}
        for _ in range(8):
            for (k, t), s in forms.items():
                run = (lambda s=s: split(s, x)) if t == 1 else (lambda s=s: s.run(None, {"pixel_values": x}))
                rates[(k, t)] += rate(run, len(x), 1)
        print("| graph | 2 calls × 1 thread, img/s | 1 call × 2 threads, img/s |\n|---|---:|---:|")
        for k in graphs:
            print(f"| {k} | {statistics.median(rates[(k, 1)]):.1f} | {statistics.median(rates[(k, 2)]):.1f} |")

        print("\n## 3. One batch of 32: 1 call × 2 threads vs 2 concurrent calls × 1 thread (median of 8)\n")
        print("| graph | 1 × 2 img/s | 2 × 1 img/s |\n|---|---:|---:|")
        xl = np.stack([lite.preprocess(im) for im in map(load_image, images[:32])]).astype(np.float32)
        for name, path, batch in (
            ("ViT-B/32 int8", graphs["fused, last layer for CLS only (shipped)"], x),
            ("lite fp32", lite.entry.path("image.onnx"), xl),
        ):
            one, two = session(path, 2), session(path, 1)
            r1, r2 = [], []
            for _ in range(8):
                r1 += rate(lambda one=one, b=batch: one.run(None, {"pixel_values": b}), len(batch), 1)
                r2 += rate(lambda two=two, b=batch: split(two, b), len(batch), 1)
            print(f"| {name} | {statistics.median(r1):.1f} | {statistics.median(r2):.1f} |")

        print("\n## 4. Where the int8 ViT's time goes (ORT profile, batch 32, 2 threads)\n")
        print("| op | share of kernel time |\n|---|---:|")
        for op, pct in op_profile(graphs["fused, last layer for CLS only (shipped)"], x):
            print(f"| {op} | {pct:.1f} % |")
        print(
            f"\nOne dynamic-int8 MatMul 1600×768×3072 in isolation: {gemm_rate(tmp, 1):.0f} GOP/s on 1 thread, "
            f"{gemm_rate(tmp, 2):.0f} GOP/s on 2."
        )
        qa, gemm = attention_split(graphs["fused, last layer for CLS only (shipped)"])
        print(
            f"\nLayer 0's `QAttention` on 16 images, 1 thread: {qa:.2f} ms; its QKV int8 GEMM alone (same "
            f"weights): {gemm:.2f} ms. So the attention core (scores, softmax, weighted sum, per image and "
            f"head) is {100 * (qa - gemm) / qa:.0f} % of the op."
        )
        print("\n## 5. Decode and preprocess, one thread, 200 Flickr8k photos (CLIP preprocessing)\n")
        print("| step | ms per photo |\n|---|---:|")
        for k, v in preprocess_costs(images[:200], int8.image._pre).items():
            print(f"| {k} | {v:.2f} |")


def preprocess_costs(paths: list[str], pre) -> dict[str, float]:
    """ms per photo on one thread: decode (load_image), the whole preprocess, its resize + crop,
    and its normalisation of the real crops by the lookup table against transformers' arithmetic
    it replaces (float64 rescale, then float32; the same bits)."""
    ims = [load_image(p) for p in paths]
    crops = [pre.pixels(im) for im in ims]
    mean, std = np.asarray(pre.mean, np.float32), np.asarray(pre.std, np.float32)

    def arithmetic(a):
        out = (a.astype(np.float64) * pre.rescale_factor).astype(np.float32)
        return np.ascontiguousarray(((out - mean) / std).transpose(2, 0, 1))

    def default_take(a):  # the lookup as shipped before this stop: np.take's default mode buffers `out`
        out, lut = np.empty((3, *a.shape[:2]), np.float32), pre.table()
        for c in range(3):
            np.take(lut[c], a[..., c], out=out[c])
        return out

    def ms(fn, items):
        t = time.perf_counter()
        for it in items:
            fn(it)
        return 1000 * (time.perf_counter() - t) / len(items)

    return {
        "decode (load_image)": ms(load_image, paths),
        "preprocess (resize, crop, normalise)": ms(pre, ims),
        "of which resize + crop (`pixels`)": ms(pre.pixels, ims),
        "normalise: arithmetic (transformers')": ms(arithmetic, crops),
        "normalise: lookup table, np.take's default mode (before)": ms(default_take, crops),
        "normalise: lookup table, mode='wrap' (`normalise`, shipped)": ms(pre.normalise, crops),
    }


def _torch_tower(model_dir: Path):
    from cliplab.models.loader import load_encoder

    return load_encoder(str(model_dir)).model.image


if __name__ == "__main__":
    main()
