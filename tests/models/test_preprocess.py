"""ResizeCropNormalize must reproduce transformers' CLIPImageProcessor (PIL backend) exactly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPImageProcessorPil

from cliplab.models.core.preprocess import CLIP_MEAN, CLIP_STD, ResizeCropNormalize, center_crop

CASES = {
    "clip-default": dict(shortest_edge=224, crop=224),
    # crop larger than the resized image with an odd difference: zero padding, extra row before
    "pad-odd": dict(shortest_edge=201, crop=224),
    "pad-odd-crop": dict(shortest_edge=200, crop=225),
    "bilinear-other-stats": dict(
        shortest_edge=256, crop=224, resample=Image.BILINEAR, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)
    ),
}


def _reference(cfg: dict) -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil(
        size={"shortest_edge": cfg["shortest_edge"]},
        crop_size={"height": cfg["crop"], "width": cfg["crop"]},
        resample=cfg.get("resample", Image.BICUBIC),
        image_mean=list(cfg.get("mean", CLIP_MEAN)),
        image_std=list(cfg.get("std", CLIP_STD)),
    )


@pytest.mark.parametrize("case", list(CASES))
def test_matches_clip_image_processor_on_odd_images(case, odd_images):
    cfg = CASES[case]
    ours, ref = ResizeCropNormalize(**cfg), _reference(cfg)
    for name, im in odd_images.items():
        want = ref(im, return_tensors="np")["pixel_values"][0]
        got = ours(im)
        assert got.dtype == np.float32 and got.shape == want.shape == (3, cfg["crop"], cfg["crop"]), name
        assert np.abs(got - want).max() <= 1e-6, f"{case}/{name} ({im.mode} {im.size})"


def test_matches_clip_image_processor_on_real_images(real_images):
    ours, ref = ResizeCropNormalize(), _reference(CASES["clip-default"])
    want = ref(real_images, return_tensors="np")["pixel_values"]
    got = np.stack([ours(im) for im in real_images])
    assert np.abs(got - want).max() <= 1e-6


def test_writing_into_out_gives_the_same_bits(real_images):
    pre = ResizeCropNormalize()
    batch = np.zeros((len(real_images), 3, 224, 224), np.float32)
    for i, im in enumerate(real_images):
        assert pre(im, out=batch[i]) is batch[i] or np.shares_memory(pre(im, out=batch[i]), batch)
    assert np.array_equal(batch, np.stack([pre(im) for im in real_images]))


def test_transparency_is_composited_on_white():
    im = Image.new("RGBA", (224, 224), (0, 0, 0, 0))  # fully transparent black
    out = ResizeCropNormalize()(im)
    white = (1.0 - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)
    assert np.allclose(out[:, 0, 0], white, atol=1e-6)


def test_center_crop_pads_extra_row_before():
    arr = np.ones((3, 4, 1), np.uint8)
    out = center_crop(arr, 6)
    assert out.shape == (6, 6, 1)
    assert out[:, :, 0].sum(axis=1).tolist() == [0, 0, 4, 4, 4, 0]
    assert out[:, :, 0].sum(axis=0).tolist() == [0, 3, 3, 3, 3, 0]


def test_efficientnet_preprocess_keeps_the_whole_short_side():
    from cliplab.models.backends.pretrained import efficientnet_preprocess

    # A 32-px thumbnail with a red 4-px frame: a 0.875 centre crop would cut the frame off.
    arr = np.full((32, 32, 3), 255, np.uint8)
    arr[:4], arr[-4:], arr[:, :4], arr[:, -4:] = (255, 0, 0), (255, 0, 0), (255, 0, 0), (255, 0, 0)
    x = efficientnet_preprocess(224)(Image.fromarray(arr))
    assert x.shape == (3, 224, 224)
    red = (x[0] > 0.9) & (x[1] < -0.9)  # mean = std = 0.5: red is (1, -1, -1)
    assert red[:, :10].all() and red[:, -10:].all() and red[:10].all() and red[-10:].all()
    assert not red[100:124, 100:124].any()
    # A wide photo keeps its full height and loses only the sides.
    wide = np.zeros((100, 200, 3), np.uint8)
    wide[:2] = 255
    y = efficientnet_preprocess(224)(Image.fromarray(wide))
    assert y.shape == (3, 224, 224) and (y[:, 0] > 0.5).all()
