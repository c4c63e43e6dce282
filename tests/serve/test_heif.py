"""Files browsers cannot show (HEIC, TIFF) are served as JPEG — full image and thumbnail — upright."""

from __future__ import annotations

import io

from PIL import Image

from cliplab.data.images import load_image
from tests.helpers import ToyEncoder


def two_tone(top, bottom, size=(60, 80)) -> Image.Image:
    """A portrait picture, `top` colour above `bottom`: its orientation is visible in two pixels."""
    im = Image.new("RGB", size, bottom)
    im.paste(top, (0, 0, size[0], size[1] // 2))
    return im


def save_on_its_side(im: Image.Image, path) -> None:
    """Stored turned 90°, with EXIF orientation 6 saying how to show it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    im.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif.tobytes(), quality=95)


def upright(data: bytes, top, bottom) -> bool:
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    im = im.convert("RGB")
    w, h = im.size
    near = lambda a, b: all(abs(x - y) < 40 for x, y in zip(a, b))  # noqa: E731
    return h > w and near(im.getpixel((w // 2, h // 5)), top) and near(im.getpixel((w // 2, 4 * h // 5)), bottom)


def test_heic_and_tiff_served_as_upright_jpeg(pics, make_client):
    cases = {"phone.heic": ((250, 200, 0), (0, 0, 200)), "scan.tif": ((0, 180, 60), (90, 0, 120))}
    for name, (top, bottom) in cases.items():
        save_on_its_side(two_tone(top, bottom), pics / name)
    client, state = make_client()
    for name, (top, bottom) in cases.items():
        vec = ToyEncoder().encode_images([load_image(pics / name)])[0].tolist()
        hit = client.post("/knn-service", json={"embedding_input": vec, "num_images": 1}).json()[0]
        assert hit["path"] == name
        full = client.get(f"/image/pics/{hit['id']}")
        assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
        assert upright(full.content, top, bottom) and Image.open(io.BytesIO(full.content)).size == (60, 80)
        again = client.get(f"/image/pics/{hit['id']}", headers={"If-None-Match": full.headers["etag"]})
        assert again.status_code == 304
        thumb = client.get(f"/thumb/pics/{hit['id']}")
        assert thumb.headers["content-type"] == "image/jpeg" and upright(thumb.content, top, bottom)
