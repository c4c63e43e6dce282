"""Video frames per second, sampled (seek + decode + RGB) and embedded with `lite`, on a generated
60 s clip; prints a markdown snippet for docs/benchmarks.md (section "Video frames (issue 22)").

    HF_HUB_OFFLINE=1 python benchmarks/video_bench.py [--seconds 60] [--size 1280x720] [--fps 30]

The clip is made here with PyAV (H.264, x264's default keyframe placement: a keyframe at most every
250 frames and at scene cuts): a shared ImageNet photo every 5 s, each slowly panned, so frames
differ as in a real video. Sampling is `cliplab.data.video.sample` (every 2 s, seek-based), the
embedding `lite`'s image tower, the whole a `cliplab index` of the folder (TinyEncoder-free: the
real model).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_clip(path: Path, seconds: int, size: tuple[int, int], fps: int, keyint: int) -> None:
    import av
    from PIL import Image

    from cliplab.data.shared import shared_path

    photos = sorted(shared_path("data", "imagenet-samples", "images").glob("*.jpg"))[::97][: max(1, seconds // 5)]
    w, h = size
    big: dict = {}  # photo index → resized once
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "g": str(keyint)}  # keyframe interval (x264's default: 250)
        for i in range(seconds * fps):
            k = (i // (5 * fps)) % len(photos)
            if k not in big:
                big[k] = Image.open(photos[k]).convert("RGB").resize((w + 64, h + 36))
            src = big[k]
            dx = (i % (5 * fps)) * 64 // (5 * fps)  # a slow pan: every frame differs a little
            frame = av.VideoFrame.from_image(src.crop((dx, dx * 36 // 64, dx + w, dx * 36 // 64 + h)))
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keyint", type=int, default=30, help="frames between keyframes (phones: ~1 s; x264: 250)")
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))

    from cliplab.data.video import sample
    from cliplab.index import Collection
    from cliplab.models import load_encoder

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        folder.mkdir()
        clip = folder / "clip.mp4"
        t = time.perf_counter()
        make_clip(clip, args.seconds, size, args.fps, args.keyint)
        print(f"made {clip.stat().st_size / 1e6:.1f} MB clip in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        decode, decode_cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            got = sample(clip)
            decode.append(time.perf_counter() - t)
            decode_cpu.append(time.process_time() - c)
        n = len(got.frames)
        enc = load_encoder("lite")
        enc.encode_images([f.image for f in got.frames[:4]])  # warm-up
        embed, embed_cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            enc.encode_images([f.image for f in got.frames])
            embed.append(time.perf_counter() - t)
            embed_cpu.append(time.process_time() - c)
        os.environ["CLIPLAB_INDEX_HOME"] = str(Path(tmp) / "home")
        t = time.perf_counter()
        with Collection(folder, encoder=enc) as col:
            st = col.update()
        index_s = time.perf_counter() - t
    d, e, dc, ec = min(decode), min(embed), min(decode_cpu), min(embed_cpu)
    print(f"### {args.seconds} s clip, {size[0]}×{size[1]} H.264 {args.fps} fps, keyframe every {args.keyint} frames")
    print(
        f"{n} frames sampled ({platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, best of {args.repeat})\n"
    )
    print("| step | wall s | frames/s | CPU ms/frame |")
    print("|---|---|---|---|")
    print(f"| sample (seek + decode + RGB) | {d:.2f} | {n / d:.1f} | {1000 * dc / n:.0f} |")
    print(f"| embed (lite image tower) | {e:.2f} | {n / e:.1f} | {1000 * ec / n:.0f} |")
    print(f"| `cliplab index` of the folder (both, + catalog) | {index_s:.2f} | {st.frames / index_s:.1f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
