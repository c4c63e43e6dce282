"""GPU check for issue 12 (run on a machine with a CUDA GPU; CI has none, so the tests cover the
selection logic only): `--device cuda|auto` with torch really moves a ViT-B/32-shape CLIP to the GPU
and gives the CPU's vectors; ONNX Runtime without a CUDA provider picks the CPU for `auto` and
refuses `cuda` in one line; export + fusion + int8 work on that machine's torch/ORT versions.

    CLIPLAB_SHARED=/path/to/shared python3 tools/gpu_check.py   (prints a JSON report)
"""

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.getcwd())
os.environ.setdefault("CLIPLAB_CACHE", "/tmp/cliplab-gpu-check-cache")
os.environ["HF_HUB_OFFLINE"] = "1"
import torch

print(
    "torch",
    torch.__version__,
    "cuda",
    torch.cuda.is_available(),
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
)
import onnxruntime as ort

print("ort", ort.__version__, ort.get_available_providers())
from cliplab.errors import CliplabError
from cliplab.models.backends.clip_hf import build_random_clip
from cliplab.runtime import load, runtime_label
from cliplab.runtime.device import ort_device, torch_device
from cliplab.runtime.select import synthetic_images

d = build_random_clip("/tmp/clip-b32", None, tiny=False)  # the shared ViT-B/32 config, random weights
res = {}
cpu = load(str(d), runtime="torch", device="cpu")
gpu = load(str(d), runtime="torch", device="cuda")
auto = load(str(d), runtime="torch", device="auto")
res["torch_device_auto"] = torch_device("auto")
res["runtime_info"] = {"cpu": cpu.runtime_info, "cuda": gpu.runtime_info, "auto": auto.runtime_info}
res["param_device"] = str(next(gpu.model.image.clip.parameters()).device)
imgs = synthetic_images(16)
texts = ["a photo of a dog.", "a red car at night", "two children on a beach", "x"]
a, b = cpu.encode_images(imgs), gpu.encode_images(imgs)
ta, tb = cpu.encode_texts(texts), gpu.encode_texts(texts)
res["image_cos_cpu_gpu"] = [float((a * b).sum(1).min()), float((a * b).sum(1).mean())]
res["text_cos_cpu_gpu"] = [float((ta * tb).sum(1).min()), float((ta * tb).sum(1).mean())]
x = np.stack([gpu.preprocess(im) for im in imgs] * 16)  # 256
gpu.encode_image_batch(x[:32])
torch.cuda.synchronize()
t = time.perf_counter()
for i in range(0, len(x), 64):
    gpu.encode_image_batch(x[i : i + 64])
res["torch_cuda_model_img_s"] = len(x) / (time.perf_counter() - t)
res["ort_device_auto"] = ort_device("auto")
try:
    ort_device("cuda")
    res["ort_cuda"] = "selected"
except CliplabError as e:
    res["ort_cuda_error"] = str(e)
t = time.perf_counter()
o8 = load(str(d), runtime="onnx", precision="int8", device="auto")
res["onnx_prepare_s"] = time.perf_counter() - t
res["onnx_label"] = runtime_label(o8)
res["onnx_callers_threads"] = [o8.image.callers, o8.image.threads]
c = o8.encode_images(imgs)
res["int8_cos_to_torch"] = [float((a * c).sum(1).min()), float((a * c).sum(1).mean())]
o8.encode_image_batch(x[:32])
t = time.perf_counter()
for i in range(0, 128, 32):
    o8.encode_image_batch(x[i : i + 32])
res["onnx_int8_16core_model_img_s"] = 128 / (time.perf_counter() - t)
print(json.dumps(res, indent=1))
