"""The page's photo-library search in a real browser (Debian's chromium under Playwright, a live
server, `lite`): the filter bar and the address, "more/less like this" chips, errors, and how a
video moment or text read from an image is shown.

The photos are the browser tests' folder with dates and a camera written in: the Flickr photos
taken in 2019 (file times), the ImageNet ones saved as PNG in 2023, three Flickr photos with EXIF
Make/Model "Canon" / "Canon EOS 5D"."""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.serve.browser_helpers import card_names, checked_page, live_server, photo_folder

FLICKR_TIME = time.mktime((2019, 7, 1, 12, 0, 0, 0, 0, -1))
IMAGENET_TIME = time.mktime((2023, 3, 1, 12, 0, 0, 0, 0, -1))
CARDS = "n => document.querySelectorAll('.card').length === n"


@pytest.fixture(scope="module")
def library(shared, tmp_path_factory):
    from PIL import Image

    folder = photo_folder(shared, tmp_path_factory.mktemp("browser-search") / "Library")
    for jpg in sorted((folder / "imagenet").glob("*.jpg")):
        with Image.open(jpg) as im:
            im.save(jpg.with_suffix(".png"))
        jpg.unlink()
    for jpg in sorted((folder / "flickr").glob("*.jpg"))[:3]:
        with Image.open(jpg) as im:
            exif = Image.Exif()
            exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D"  # Make, Model
            im.save(jpg, exif=exif, quality=92)
    for path in folder.rglob("*.*"):
        t = IMAGENET_TIME if path.suffix == ".png" else FLICKR_TIME
        os.utime(path, (t, t))
    return folder


@pytest.fixture(scope="module")
def server(library, tmp_path_factory, lite_encoder):
    from cliplab.serve import open_state

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPLAB_INDEX_HOME", str(tmp_path_factory.mktemp("index-home")))
        state = open_state([library], model="lite", loader=lambda spec: lite_encoder)
    try:
        with live_server(state) as url:
            yield url
    finally:
        state.close()


@pytest.fixture
def page(browser):
    with checked_page(browser, 1280, 800) as pg:
        yield pg


def address(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def search(page, server, text="a dog"):
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('42 images')")
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_function(CARDS, arg=40)


def test_filters_narrow_results_and_land_in_the_address(page, server):
    search(page, server)
    assert page.locator("#type option[value=png]").count() == 1  # the facets fill the bar
    page.select_option("#type", "png")
    page.wait_for_function(CARDS, arg=8)
    assert all(n.endswith(".png") for n in card_names(page))
    assert address(page) == {"q": "a dog", "collection": "Library", "type": "png"}
    page.select_option("#type", "")
    page.select_option("#camera", page.locator("#camera option", has_text="EOS 5D").get_attribute("value"))
    page.wait_for_function(CARDS, arg=3)
    assert "EOS 5D" in address(page)["camera"] and "type" not in address(page)
    page.fill("#after", "2023")
    page.press("#after", "Enter")  # Canon photos are from 2019: nothing passes, and the server says why
    page.wait_for_selector("#empty:has-text('No images match these filters')")
    assert page.locator(".card").count() == 0 and "after 2023" in page.text_content("#empty")
    page.click("#filters-clear")
    page.wait_for_function(CARDS, arg=40)
    assert address(page) == {"q": "a dog", "collection": "Library"}
    assert page.locator(".card .taken").count() == 0  # relevance order: no dates in the way


def test_an_address_restores_the_filter_bar_and_results_and_back_works(page, server):
    page.goto(server + "/?q=a+dog&type=png&sort=-date&mode=semantic")
    page.wait_for_selector("#cutoff:not([hidden])")
    dated = card_names(page)  # the PNGs above the query's cut-off, newest first
    assert 0 < len(dated) <= 8 and all(n.endswith(".png") for n in dated)
    assert page.input_value("#q") == "a dog" and page.input_value("#type") == "png"
    assert page.input_value("#sort") == "-date" and page.input_value("#mode") == "semantic"
    assert page.is_visible("#cutoff") and "newest first" in page.text_content("#cutoff")
    assert "score ≥" in page.text_content("#cutoff") and "top − 0.65" in page.get_attribute("#cutoff", "title")
    assert "semantic" in page.text_content("#summary")
    # each card shows the date it is ordered by, and that it is a file date (the PNGs carry no EXIF)
    days = page.eval_on_selector_all(".card .taken", "ts => ts.map(t => [t.textContent, t.title])")
    assert len(days) == len(dated) and all(d == "2023-03-01" and t.startswith("file date") for d, t in days)
    page.select_option("#type", "jpg")
    page.wait_for_function("document.querySelectorAll('.card').length > 8")
    assert address(page)["type"] == "jpg"
    page.go_back()
    page.wait_for_function(CARDS, arg=len(dated))
    assert page.input_value("#type") == "png" and address(page)["type"] == "png" and card_names(page) == dated
    page.go_forward()
    page.wait_for_function("document.querySelector('#type').value === 'jpg'")


def test_more_and_less_like_this_chips_change_the_ranking(page, server):
    search(page, server, "a red sports car")
    before = card_names(page)
    assert before[0] == "sports_car.png"
    bike = before.index("mountain_bike.png")
    page.locator(".card", has_text="mountain_bike.png").hover()
    page.click(".card:has-text('mountain_bike.png') .more-like")
    page.wait_for_selector("#query-image .chip.chip-more:has-text('More like mountain_bike.png')")
    page.wait_for_function("document.querySelector('#summary').textContent.includes('images like')")
    more = card_names(page)
    assert "mountain_bike.png" not in more and more != before[: len(more)]  # the chip's image is left out
    assert " + like:" in address(page)["q"] and address(page)["q"].startswith("a red sports car")
    # less like the best hit: it falls
    top = more[0]
    page.click(f".card:has-text('{top}') .less-like")
    page.wait_for_selector(f"#query-image .chip.chip-less:has-text('Less like {top}')")
    page.wait_for_function(
        "document.querySelectorAll('#query-image .chip').length === 2 && document.querySelectorAll('.card').length > 0"
    )
    less = card_names(page)
    assert top not in less[:1] and " - like:" in address(page)["q"]
    # removing a chip runs the query again without it
    page.click("#query-image .chip.chip-more button")
    page.wait_for_function("document.querySelectorAll('#query-image .chip').length === 1")
    page.wait_for_function("!document.querySelector('#summary').textContent.includes('+ images like')")
    assert "+ like:" not in address(page)["q"] and "mountain_bike.png" in card_names(page)
    assert bike >= 0


def test_a_bad_expression_shows_the_error_line(page, server):
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('42 images')")
    page.fill("#q", '"beach + sunset')
    page.press("#q", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "unbalanced quotes" in page.text_content("#error-text")
    assert page.locator(".card").count() == 0


GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs="


def test_a_video_moment_and_text_read_from_an_image_are_shown(page, server):
    """The answer's optional fields (video frames and OCR come from other parts of the index): a
    faked answer, so the page's handling is tested whatever the indexed data holds."""
    hit = {"rank": 1, "score": 0.31, "caption": "", "thumb_url": GIF}
    results = [
        {
            **hit,
            "id": 1,
            "path": "clips/walk.mp4",
            "name": "walk.mp4",
            "url": server + "/image/Library/1",
            "media": "video",
            "timestamp": 83.5,
            "moments": [{"timestamp": 83.5, "score": 0.31}],
        },
        {
            **hit,
            "rank": 2,
            "id": 2,
            "path": "scans/menu.png",
            "name": "menu.png",
            "url": GIF,
            "ocr": "Daily menu: pizza margherita, Pizza bianca <b>and</b> salad",
        },
    ]
    answer = {
        "model": "lite",
        "collection": "Library",
        "query": "pizza",
        "mode": "hybrid",
        "took_ms": 1,
        "sort": {"by": "relevance", "rule": None},
        "results": results,
    }
    page.route(
        "**/api/search?*",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(answer)),
    )
    page.goto(server + "/?q=pizza")
    page.wait_for_function(CARDS, arg=2)
    assert page.text_content(".card .at") == "@ 1:23"
    page.locator(".card-open").first.click()
    page.wait_for_selector("#lightbox[open]")
    assert page.is_visible("#lightbox-video") and not page.is_visible("#lightbox-img")
    assert page.get_attribute("#lightbox-video", "src").endswith("/image/Library/1#t=83.5")
    assert "@ 1:23" in page.text_content("#lightbox-name")
    page.click("#lightbox-next")
    page.wait_for_selector("#lightbox-ocr mark")
    assert page.is_visible("#lightbox-img") and not page.is_visible("#lightbox-video")
    assert page.eval_on_selector_all("#lightbox-ocr mark", "m => m.map(e => e.textContent)") == ["pizza", "Pizza"]
    assert "<b>and</b>" in page.text_content("#lightbox-ocr")  # text, never markup


def test_a_video_hit_plays_from_its_moment(browser, shared, tmp_path):
    """Real data: a video indexed frame by frame (3 s of a dog, then 3 s of a beach); "more like"
    a beach photo finds the video at its beach moment, and the lightbox plays it from there."""
    from cliplab.serve import Settings, open_state
    from tests.data.test_video import BEACH, DOG, make_video, photo
    from tests.index.helpers import TinyEncoder

    lib = tmp_path / "lib"
    lib.mkdir()
    make_video(lib / "clip.mp4", [photo(shared, DOG), photo(shared, BEACH)])
    photo(shared, BEACH).save(lib / "beach.jpg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "index-home"))
        state = open_state([lib], model="tiny", loader=lambda spec: TinyEncoder(), settings=Settings())
    context = browser.new_context()
    try:
        with live_server(state) as url:
            beach = state.sources["lib"].collection.catalog.id_of("beach.jpg")
            page = context.new_page()
            page.goto(f"{url}/?q=like:{beach}")
            page.wait_for_selector(".card:has-text('clip.mp4') .at")
            at = page.text_content(".card:has-text('clip.mp4') .at")
            assert at in ("@ 0:03", "@ 0:04", "@ 0:05")  # the beach half of the clip
            page.click(".card:has-text('clip.mp4') .card-open")
            page.wait_for_selector("#lightbox[open] #lightbox-video:not([hidden])")
            src = page.get_attribute("#lightbox-video", "src")
            assert src.startswith(f"{url}/image/lib/") and "#t=" in src and float(src.split("#t=")[1]) >= 3.0
    finally:
        context.close()
        state.close()
