import pytest
from PIL import Image

from cliplab.data.images import list_images, load_image
from cliplab.errors import CliplabError, ImageError
from tests.helpers import make_bad_files, make_image


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return make_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    "name,reason",
    [
        ("truncated.jpg", "truncated"),
        ("empty.jpg", "empty file"),
        ("notes.png", "not an image"),
        ("huge.png", "too large"),
    ],
)
def test_bad_files_raise_image_error_with_reason(bad, name, reason):
    with pytest.raises(ImageError, match=reason):
        load_image(bad[name])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    p = tmp_path / f"img.{fmt.lower()}"
    Image.new(mode, (10, 7)).save(p, format=fmt)
    im = load_image(p)
    assert im.mode == "RGB" and im.size == (10, 7)


def test_exif_orientation_is_honoured(tmp_path):
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored landscape, shown portrait
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif.tobytes())
    assert load_image(p).size == (20, 40)


def test_pixel_limit_is_configurable(tmp_path):
    p = make_image(tmp_path / "a.png", size=(100, 100))
    assert load_image(p, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageError, match="too large"):
        load_image(p, max_pixels=9_999)


def test_url_offline_is_a_clear_error():
    with pytest.raises(ImageError, match="cannot download"):
        load_image("http://127.0.0.1:9/none.jpg")


def test_list_images_folders_lists_and_missing(tmp_path):
    a = make_image(tmp_path / "d" / "b.jpg")
    b = make_image(tmp_path / "d" / "sub" / "a.png")
    (tmp_path / "d" / "readme.md").write_text("x")
    lst = tmp_path / "list.txt"
    lst.write_text(f"# comment\n{a}\nd/sub/a.png\n\n")
    assert list_images([tmp_path / "d"]) == [str(a), str(b)]
    assert list_images([lst]) == [str(a), str(tmp_path / "d/sub/a.png")]
    assert list_images(["https://x.org/a.jpg"]) == ["https://x.org/a.jpg"]
    with pytest.raises(CliplabError, match="no such file"):
        list_images([tmp_path / "missing"])


def test_transparency_is_composited_on_white(tmp_path):
    p = tmp_path / "t.png"
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(p)
    assert load_image(p).getpixel((0, 0)) == (255, 255, 255)
