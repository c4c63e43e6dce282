"""The page at `/` in a real browser: Debian's chromium driven by Playwright, against a live server
(uvicorn in a thread) on real photos indexed with `lite`. Also clip-retrieval's own web front,
unchanged, served from another origin and pointed at this server.

`make test` installs chromium (apt) and unpacks clip-retrieval's wheel into .venv/clip-retrieval."""

from __future__ import annotations

import base64
import csv
from pathlib import Path

import pytest

from tests.helpers import ToyEncoder, make_image
from tests.serve.browser_helpers import (
    CLIP_RETRIEVAL_DIR,
    assert_local,
    card_names,
    checked_page,
    live_server,
    photo_folder,
    record_requests,
    static_server,
)

QUERY = "a dog running on the grass"
ALL_LOADED = (
    "sel => [...document.querySelectorAll(sel)].length > 0 && "
    "[...document.querySelectorAll(sel)].every(i => i.complete && i.naturalWidth > 0)"
)


@pytest.fixture(scope="module")
def photos(shared, tmp_path_factory):
    return photo_folder(shared, tmp_path_factory.mktemp("browser") / "Photos")


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """URL of clip-retrieval's web front, served from another origin than the API (an empty folder
    when the build is missing: then only the front's test fails, saying so)."""
    build = CLIP_RETRIEVAL_DIR / "front" / "build"
    with static_server(build if build.is_dir() else tmp_path_factory.mktemp("no-front")) as url:
        yield url


@pytest.fixture(scope="module")
def server(photos, tmp_path_factory, lite_encoder, front):
    """URL of a live server on the photos folder (42 images) with the real `lite` model (the
    session's, already loaded for other tests). Same-origin by default: it names the front's
    origin (--cors-origin) so that page may call it."""
    from cliplab.serve import Settings, open_state

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPLAB_INDEX_HOME", str(tmp_path_factory.mktemp("index-home")))
        settings = Settings(cors_origins=[front])
        state = open_state([photos], model="lite", loader=lambda spec: lite_encoder, settings=settings)
    try:
        with live_server(state) as url:
            yield url
    finally:
        state.close()


@pytest.fixture
def page(browser):
    with checked_page(browser, 1280, 720) as pg:
        yield pg


@pytest.fixture(scope="module")
def dog_photos(shared) -> set[str]:
    """Flickr8k file names whose human captions mention a dog."""
    with open(shared / "data" / "flickr8k-1k" / "captions.csv", newline="") as f:
        return {Path(r["path"]).name for r in csv.DictReader(f) if "dog" in r["caption"].lower()}


def card_scores(page) -> list[float]:
    return [float(s) for s in page.eval_on_selector_all(".card .score", "els => els.map(e => e.textContent)")]


def search(page, server, text=QUERY):
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('42 images')")
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_selector(".card")


def test_text_search_shows_thumbnails_and_status(page, server, dog_photos):
    search(page, server)
    page.wait_for_function(ALL_LOADED, arg=".card img")  # lazy images: those on screen must load
    names = card_names(page)
    assert len(names) == 40  # one page; the folder has 42 images
    assert names[0] in dog_photos and sum(n in dog_photos for n in names[:5]) >= 4
    scores = card_scores(page)
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    first = page.locator(".card img").first
    assert first.get_attribute("alt") == names[0]
    status = page.text_content("#status")
    assert "42 images" in status and "lite" in status
    assert f"for “{QUERY}”" in page.text_content("#summary")
    assert "q=a+dog" in page.url  # the query is in the address


def test_scrolling_loads_the_next_page(page, server):
    search(page, server)
    assert len(card_names(page)) == 40
    page.mouse.wheel(0, 20_000)
    page.wait_for_function("document.querySelectorAll('.card').length === 42")
    names = card_names(page)
    assert len(set(names)) == 42  # the second page continues the first, no repeats


def test_a_new_search_replaces_one_in_flight(page, server):
    search(page, server, "a red sports car")
    page.fill("#q", "a pizza")
    page.press("#q", "Enter")
    page.fill("#q", "a lighthouse by the sea")
    page.press("#q", "Enter")  # while "a pizza" may still be answering
    page.wait_for_function("document.querySelector('#summary').textContent.includes('lighthouse')")
    page.wait_for_function("document.querySelectorAll('.card').length === 40")
    assert card_names(page)[0] == "lighthouse.jpg"
    assert "q=a+lighthouse" in page.url


def test_image_upload_finds_the_same_photo_first(page, server, photos):
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('42 images')")
    page.set_input_files("#image-file", str(photos / "imagenet" / "golden_retriever.jpg"))
    page.wait_for_selector(".card")
    assert card_names(page)[0] == "golden_retriever.jpg"
    assert card_scores(page)[0] > 0.99
    assert page.is_visible("#query-image") and "golden_retriever.jpg" in page.text_content("#query-image")
    page.wait_for_function(ALL_LOADED, arg="#query-image img")


def test_dropping_an_image_searches_by_it(page, server, photos):
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('42 images')")
    data = base64.b64encode((photos / "imagenet" / "pizza.jpg").read_bytes()).decode()
    transfer = page.evaluate_handle(
        """b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "pizza.jpg", {type: "image/jpeg"}));
        return dt; }""",
        data,
    )
    page.dispatch_event("main", "dragenter", {"dataTransfer": transfer})
    assert page.is_visible("#drop-overlay")
    page.dispatch_event("main", "drop", {"dataTransfer": transfer})
    page.wait_for_selector(".card")
    assert not page.is_visible("#drop-overlay")
    assert card_names(page)[0] == "pizza.jpg"
    assert "pizza.jpg" in page.text_content("#summary")
    # pasting an image from the clipboard does the same
    page.evaluate(
        """b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "pasted.jpg", {type: "image/jpeg"}));
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt})); }""",
        base64.b64encode((photos / "imagenet" / "lighthouse.jpg").read_bytes()).decode(),
    )
    page.wait_for_function("document.querySelector('#summary').textContent.includes('pasted.jpg')")
    assert card_names(page)[0] == "lighthouse.jpg"


def test_lightbox_shows_full_image_and_more_like_this(page, server):
    search(page, server)
    first = card_names(page)[0]
    page.locator(".card").first.click()
    page.wait_for_selector("#lightbox[open]")
    page.wait_for_function(ALL_LOADED, arg="#lightbox-img")
    assert "/image/" in page.get_attribute("#lightbox-img", "src")
    assert page.text_content("#lightbox-name") == first
    page.click("#lightbox-like")
    page.wait_for_selector("#lightbox", state="hidden")
    page.wait_for_function("document.querySelector('#summary').textContent.includes('images like')")
    names = card_names(page)
    assert names and first not in names  # the image itself is left out
    assert "More like " + first in page.text_content("#query-image")


def test_lightbox_classify_uses_the_indexed_image(page, server):
    search(page, server, "a red sports car")
    assert card_names(page)[0] == "sports_car.jpg"
    page.locator(".card").first.click()
    page.click("#lightbox-classify")
    page.wait_for_selector("#panel-classify:not([hidden]) .classify-card .bar")
    assert page.text_content(".classify-card h3") == "imagenet/sports_car.jpg"
    assert page.text_content(".classify-card .bar-label") == "car"  # the first default label that fits


def test_folder_filter_and_threshold(page, server):
    search(page, server)
    page.fill("#under", "imagenet")
    page.press("#under", "Enter")
    page.wait_for_function("document.querySelectorAll('.card').length === 8")
    assert "golden_retriever.jpg" in card_names(page)
    page.fill("#under", "")
    page.press("#under", "Enter")
    page.wait_for_function("document.querySelectorAll('.card').length === 40")
    page.eval_on_selector(
        "#threshold",
        """e => { e.value = "0.3";
        e.dispatchEvent(new Event("input")); e.dispatchEvent(new Event("change")); }""",
    )
    page.wait_for_function(
        "document.querySelector('#summary').textContent.startsWith('0 ') || "
        "(document.querySelectorAll('.card').length > 0 && "
        "document.querySelectorAll('.card').length < 40)"
    )
    scores = card_scores(page)
    assert scores and min(scores) >= 0.295  # shown rounded to 2 decimals
    assert page.text_content("#threshold-value") == "0.30"


def test_api_error_is_shown(page, server, tmp_path):
    fake = tmp_path / "not-really.jpg"
    fake.write_text("this is text, not a JPEG\n")
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('42 images')")
    page.set_input_files("#image-file", str(fake))
    page.wait_for_selector("#error:not([hidden])")
    assert "not-really.jpg" in page.text_content("#error-text") or "image" in page.text_content("#error-text")
    assert page.locator(".card").count() == 0


def test_classify_tab_shows_probability_bars(page, server, photos):
    page.goto(server + "/")
    page.click("#tab-classify")
    page.fill("#labels", "dog, cat, car")
    page.set_input_files(
        "#classify-files",
        [str(photos / "imagenet" / "golden_retriever.jpg"), str(photos / "imagenet" / "sports_car.jpg")],
    )
    page.wait_for_selector(".classify-card .bar")
    cards = page.locator(".classify-card")
    assert cards.count() == 2
    top = page.eval_on_selector_all(
        ".classify-card",
        """cards => cards.map(c => [
        c.querySelector('h3').textContent, c.querySelector('.bar-label').textContent,
        parseFloat(c.querySelector('.bar-fill').style.width)])""",
    )
    assert top[0][:2] == ["golden_retriever.jpg", "dog"] and top[0][2] > 50
    assert top[1][:2] == ["sports_car.jpg", "car"] and top[1][2] > 50
    assert page.locator(".classify-card").first.locator(".bar").count() == 3


def toy_state(tmp_path, counts=(3,), **settings):
    """Folders of coloured images (`counts` images each) served with the toy model (milliseconds)."""
    from cliplab.serve import Settings, open_state

    colours = [(220, 20, 20), (20, 200, 20), (20, 20, 220), (128, 128, 128)]
    folders = []
    for f, count in enumerate(counts):
        folders.append(tmp_path / f"pics{f + 1}")
        for i in range(count):
            make_image(folders[-1] / f"c{i}.png", size=(60, 40), color=colours[i])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPLAB_INDEX_HOME", str(tmp_path / "index-home"))
        return open_state(folders, model="toy", loader=lambda spec: ToyEncoder(), settings=Settings(**settings))


def test_collection_picker_switches_collection(browser, tmp_path):
    state = toy_state(tmp_path, counts=(3, 4))
    context = browser.new_context()
    try:
        with live_server(state) as url:
            page = context.new_page()
            page.goto(url + "/?q=red")
            page.wait_for_function("document.querySelectorAll('.card').length === 3")
            assert page.is_visible("#collection") and page.input_value("#collection") == "pics1"
            assert "3 images" in page.text_content("#status")
            page.select_option("#collection", "pics2")
            page.wait_for_function("document.querySelectorAll('.card').length === 4")
            assert "4 images" in page.text_content("#status")
            assert all("/pics2/" in src for src in page.eval_on_selector_all(".card img", "e => e.map(i => i.src)"))
            assert "collection=pics2" in page.url
    finally:
        context.close()
        state.close()


def test_token_is_asked_once_and_remembered(browser, tmp_path):
    state = toy_state(tmp_path, token="s3cret")
    context = browser.new_context()
    try:
        with live_server(state) as url:
            page = context.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#token-dialog[open]")
            page.fill("#token-input", "wrong")
            page.press("#token-input", "Enter")
            page.wait_for_selector("#token-dialog[open] >> text=refused")
            page.fill("#token-input", "s3cret")
            page.press("#token-input", "Enter")
            page.wait_for_selector("#status:has-text('3 images')")
            page.fill("#q", "red")
            page.press("#q", "Enter")
            page.wait_for_function(ALL_LOADED, arg=".card img")  # <img> requests carry the cookie
            assert page.locator(".card").count() == 3
            page.reload()  # remembered: no second prompt
            page.wait_for_selector("#status:has-text('3 images')")
            assert not page.is_visible("#token-dialog")
    finally:
        context.close()
        state.close()


def front_build() -> Path:
    build = CLIP_RETRIEVAL_DIR / "front" / "build"
    if not (build / "index.html").is_file():
        raise RuntimeError(f"{build} is missing: `make test` unpacks clip-retrieval's wheel there")
    return build


def test_clip_retrieval_front_shows_results(browser, server, front, photos, dog_photos):
    """clip-retrieval's web front (from its 2.45 wheel, unchanged) finds our back end via `?back=`."""
    front_build()  # a clear error when `make test` has not unpacked it
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        requests = record_requests(page)
        page.set_default_timeout(30_000)
        page.goto(f"{front}/?back={server}&index=Photos")
        page.wait_for_selector("#searchBar")  # Playwright's selectors pierce the open shadow root
        page.wait_for_function("document.querySelector('clip-front').indices.includes('Photos')")
        page.fill("#searchBar", QUERY)
        page.press("#searchBar", "Enter")
        page.wait_for_selector("img.pic")
        page.wait_for_function(
            "[...document.querySelector('clip-front').shadowRoot.querySelectorAll('img.pic')]"
            ".slice(0, 10).every(i => i.complete && i.naturalWidth > 0)"
        )
        first = page.locator("img.pic").first
        assert first.get_attribute("src").startswith(server + "/image/Photos/")
        assert first.get_attribute("title") in dog_photos  # caption = the file name; a dog, first
        # image search through the front's file chooser: base64 in a text/plain JSON body
        page.set_input_files("#filechooser", str(photos / "imagenet" / "golden_retriever.jpg"))
        page.wait_for_function(
            "document.querySelector('clip-front').shadowRoot.querySelector('img.pic').title === 'golden_retriever.jpg'"
        )
        assert_local(requests)  # its default back end (knn.laion.ai) is never asked
    finally:
        context.close()
