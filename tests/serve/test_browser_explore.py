"""The page's Explore view in a real browser (Debian's chromium under Playwright) against a live,
token-protected server on real photos indexed with `lite` (served) and `conse`: the map on a canvas
(pan, zoom, hit tests, thumbnails), the clusters and their grids, a shift-dragged region turned
into a search filter, the path-list export, the model picker, the token prompt and dark mode.
Fails on any console error (a failed request logs one) and on any request off 127.0.0.1."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

import pytest

from tests.serve.browser_helpers import card_names, checked_page, model_server

TOKEN = "s3cret"
READY = "m => window.cliplab.explore && window.cliplab.explore.model === m && window.cliplab.explore.count === 28"


@pytest.fixture(scope="module")
def server(lite_conse_photos, lite_conse):
    with model_server(lite_conse_photos, lite_conse, token=TOKEN) as url:
        yield url


@pytest.fixture
def page(browser):
    with checked_page(browser, 1280, 900, console=True, token=TOKEN) as pg:
        yield pg


def fetch(server: str, path: str, **params) -> bytes:
    request = Request(f"{server}{path}?{urlencode(params)}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urlopen(request) as r:
        return r.read()


def get(server: str, path: str, **params) -> dict:
    return json.loads(fetch(server, path, **params))


def explore(page, server, model="lite"):
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('28 images')")
    page.click("#tab-explore")
    page.wait_for_function(READY, arg=model)
    page.wait_for_selector(".cluster-item")


def js(page, expr: str, arg=None):
    return page.evaluate(f"arg => window.cliplab.explore.{expr}", arg)


def tip(page) -> int:
    page.wait_for_selector("#map-tip:not([hidden])")
    return int(page.get_attribute("#map-tip", "data-id"))


def test_the_map_pans_and_zooms_and_its_points_stay_hit_testable(page, server):
    explore(page, server)
    assert "#explore?model=lite" in page.url
    page.wait_for_function("window.cliplab.explore.thumbsLoaded === 28")  # few points: thumbnails drawn
    ids = get(server, "/api/map")["points"]["id"]
    target = ids[len(ids) // 2]
    p = js(page, "screenOf(arg)", target)
    page.mouse.move(p["x"], p["y"])
    assert tip(page) == target
    before = js(page, "view")
    # drag (towards the middle, so the point stays on the canvas): the map moves with the pointer
    box = page.locator("#map-canvas").bounding_box()
    dx = 120 if p["x"] < box["x"] + box["width"] / 2 else -120
    dy = 60 if p["y"] < box["y"] + box["height"] / 2 else -60
    page.mouse.down()
    page.mouse.move(p["x"] + dx, p["y"] + dy, steps=6)
    page.mouse.up()
    moved = js(page, "view")
    assert (round(moved["ox"] - before["ox"]), round(moved["oy"] - before["oy"]), moved["s"]) == (dx, dy, before["s"])
    q = js(page, "screenOf(arg)", target)
    assert (round(q["x"] - p["x"]), round(q["y"] - p["y"])) == (dx, dy)
    page.mouse.move(q["x"] + 1, q["y"] + 1)
    assert js(page, "idAt(arg[0], arg[1])", [q["x"], q["y"]]) == target and tip(page) == target
    # wheel: zooms in around the pointer (the point under it stays there)
    page.mouse.wheel(0, -400)
    page.wait_for_function("s => window.cliplab.explore.view.s > s * 1.5", arg=moved["s"])
    r = js(page, "screenOf(arg)", target)
    assert abs(r["x"] - q["x"]) < 2 and abs(r["y"] - q["y"]) < 2
    assert js(page, "idAt(arg[0], arg[1])", [r["x"], r["y"]]) == target
    # the buttons: in, out, fit
    s = js(page, "view")["s"]
    page.click("#map-zoom-in")
    page.wait_for_function("s => Math.abs(window.cliplab.explore.view.s - s * 1.5) < 1e-6", arg=s)
    page.click("#map-zoom-out")
    page.wait_for_function("s => Math.abs(window.cliplab.explore.view.s - s) < 1e-6", arg=s)
    page.click("#map-reset")
    assert js(page, "view") == before


def test_a_cluster_opens_its_grid_from_the_list_and_from_the_map(page, server):
    explore(page, server)
    clusters = get(server, "/api/clusters")["clusters"]
    assert page.locator(".cluster-item").count() == len(clusters) >= 2
    first, second = clusters[0], clusters[1]
    item = page.locator(f".cluster-item[data-cluster='{first['cluster']}']")
    assert first["names"][0]["name"] in item.text_content() and str(first["size"]) in item.text_content()
    item.click()
    members = get(server, "/api/map/members", cluster=first["cluster"], n=60)
    page.wait_for_function("n => document.querySelectorAll('#selection-grid .member').length === n", arg=first["size"])
    shown = page.eval_on_selector_all("#selection-grid .member", "cs => cs.map(c => Number(c.dataset.id))")
    assert shown == [r["id"] for r in members["results"]] and members["total"] == first["size"]
    assert page.text_content("#selection-count") == f"{first['size']} photos"
    # a click on one of the other cluster's points opens that one
    points = get(server, "/api/map")["points"]
    other = next(i for i, c in zip(points["id"], points["cluster"]) if c == second["cluster"])
    p = js(page, "screenOf(arg)", other)
    page.mouse.click(p["x"], p["y"])
    page.wait_for_selector(f"#selection-title:has-text('Cluster {second['cluster']}:')")
    page.wait_for_function("n => document.querySelectorAll('#selection-grid .member').length === n", arg=second["size"])
    assert page.get_attribute(".cluster-item.on", "data-cluster") == str(second["cluster"])


def test_a_shift_dragged_region_becomes_a_search_filter(page, server):
    explore(page, server)
    box = page.locator("#map-canvas").bounding_box()
    x0, y0, x1, y1 = box["x"] + 10, box["y"] + 10, box["x"] + box["width"] * 0.45, box["y"] + box["height"] - 10
    points = get(server, "/api/map")["points"]
    inside = set()
    for i in points["id"]:
        p = js(page, "screenOf(arg)", i)
        if x0 < p["x"] < x1 and y0 < p["y"] < y1:
            inside.add(i)
    assert 3 <= len(inside) < 28
    page.keyboard.down("Shift")
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_selector("#selection-title:has-text('Selected region')")
    page.wait_for_function("n => document.querySelectorAll('#selection-grid .member').length === n", arg=len(inside))
    shown = page.eval_on_selector_all("#selection-grid .member", "cs => cs.map(c => Number(c.dataset.id))")
    assert set(shown) == inside
    page.click("#selection-search")
    page.wait_for_selector(
        "#panel-search:not([hidden]) #query-image .chip-map:has-text('In the selected region of the lite map')"
    )
    page.fill("#q", "a photo")
    page.press("#q", "Enter")
    page.wait_for_function("n => document.querySelectorAll('.card').length === n", arg=len(inside))
    address = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert address["map"] == "lite" and len(address["region"].split(",")) == 4 and "#explore" not in page.url
    answer = get(server, "/api/search", q="a photo", region=address["region"], map="lite", n=40)
    assert {r["id"] for r in answer["results"]} == inside
    assert card_names(page) == [r["name"] for r in answer["results"]]
    # the chip's × drops the filter: the whole collection again
    page.click("#query-image .chip-map button")
    page.wait_for_function("document.querySelectorAll('.card').length === 28")
    assert "region" not in page.url and page.locator("#query-image .chip-map").count() == 0


def test_a_selection_exports_as_a_path_list(page, server):
    explore(page, server)
    cluster = get(server, "/api/clusters")["clusters"][0]["cluster"]
    page.click(f".cluster-item[data-cluster='{cluster}']")
    page.wait_for_selector("#selection-grid .member")
    with page.expect_download() as info:
        page.click("#selection-export")
    download = info.value
    assert download.suggested_filename == f"Photos-cluster-{cluster}.txt"
    text = open(download.path(), encoding="utf-8").read()
    assert text == fetch(server, "/api/map/members", cluster=cluster, format="paths").decode()
    lines = text.splitlines()
    assert lines and all(line.startswith(("flickr/", "imagenet/")) for line in lines)


def test_the_model_picker_shows_another_models_map(page, server):
    explore(page, server)
    assert page.is_visible("#map-model-field")
    page.select_option("#map-model", "conse")
    page.wait_for_function(READY, arg="conse")
    assert "#explore?model=conse" in page.url
    conse = get(server, "/api/clusters", model="conse")["clusters"]
    page.wait_for_function("n => document.querySelectorAll('.cluster-item').length === n", arg=len(conse))
    assert conse[0]["names"][0]["name"] in page.text_content(".cluster-item")
    page.reload()  # the address keeps the model
    page.wait_for_function(READY, arg="conse")


def test_the_token_prompt_then_the_map_and_its_thumbnails(browser, server):
    # the first requests are refused (401) until the token is given: those console lines are expected
    with checked_page(browser, 1280, 900, console=True, allow=("status of 401",)) as page:
        page.goto(server + "/#explore")
        page.wait_for_selector("#token-dialog[open]")
        page.fill("#token-input", TOKEN)
        page.press("#token-input", "Enter")
        page.wait_for_function(READY, arg="lite")
        page.wait_for_function("window.cliplab.explore.thumbsLoaded === 28")  # <img> requests carry the cookie


def test_dark_mode_draws_the_map_on_a_dark_surface(browser, server):
    with checked_page(browser, 1280, 900, console=True, color_scheme="dark", token=TOKEN) as page:
        explore(page, server)
        pixel = page.evaluate(
            "Array.from(document.querySelector('#map-canvas').getContext('2d').getImageData(3, 3, 1, 1).data)"
        )
        assert pixel == [26, 29, 35, 255]  # --surface, dark
        assert (
            page.evaluate("getComputedStyle(document.querySelector('.cluster-item')).backgroundColor")
            == "rgb(26, 29, 35)"
        )
