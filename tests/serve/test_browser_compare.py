"""The page's Compare view in a real browser (Debian's chromium under Playwright) against a live
server on real photos indexed with `lite` (served) and `conse`: one column per model, photos only
one model found marked, the agreement figures, a photo's rank under every model, the retrieval
eval on the folder's captions.csv, an uploaded photo as the query, the address, dark mode. Fails on any console error (a failed
request logs one) and on any request that leaves 127.0.0.1."""

from __future__ import annotations

import json
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest

from tests.serve.browser_helpers import checked_page, model_server

QUERY = "a dog running on the grass"
COLUMNS = "n => document.querySelectorAll('.compare-column').length === n"


@pytest.fixture(scope="module")
def server(lite_conse_photos, lite_conse, tmp_path_factory):
    """lite served, conse beside it, and one `analyze` report folder (`serve --reports DIR`)."""
    reports = tmp_path_factory.mktemp("reports")
    (reports / "flickr-vs-clip").mkdir()
    (reports / "flickr-vs-clip" / "report.html").write_text(
        "<!doctype html><title>Flickr vs CLIP</title><h1>Flickr vs CLIP</h1><p>the report</p>"
    )
    with model_server(lite_conse_photos, lite_conse, reports=[reports]) as url:
        yield url


@pytest.fixture
def page(browser):
    with checked_page(browser, 1280, 900, console=True) as pg:
        yield pg


def get(server: str, path: str, **params) -> dict:
    with urlopen(f"{server}{path}?{urlencode(params)}") as r:
        return json.loads(r.read())


def compare(page, server, query=QUERY, models="lite,conse", n=10):
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('28 images')")
    page.click("#tab-compare")
    page.wait_for_selector(".model-chip[data-model=conse][aria-pressed=true]")
    page.select_option("#compare-n", str(n))
    page.fill("#compare-q", query)
    page.press("#compare-q", "Enter")
    page.wait_for_function(COLUMNS, arg=len(models.split(",")))
    page.wait_for_selector("#compare-summary .num")
    return get(server, "/api/compare", q=query, models=models, n=n)


def column(page, model: str) -> list[dict]:
    return page.eval_on_selector_all(
        f".compare-column[data-model={model}] .cmp-card",
        """cards => cards.map(c => ({id: Number(c.dataset.id), only: c.classList.contains('only'),
            rank: c.querySelector('.cmp-rank').textContent, score: c.querySelector('.score').textContent}))""",
    )


def test_two_models_side_by_side_with_marks_and_agreement(page, server):
    answer = compare(page, server)
    assert [c["model"] for c in answer["models"]] == ["lite", "conse"]
    assert page.eval_on_selector_all(".compare-column", "cs => cs.map(c => c.dataset.model)") == ["lite", "conse"]
    for col in answer["models"]:
        shown = column(page, col["model"])
        assert [c["id"] for c in shown] == [r["id"] for r in col["results"]] and len(shown) == 10
        assert [c["rank"] for c in shown] == [f"#{r['rank']}" for r in col["results"]]
        assert [c["score"] for c in shown] == [f"{r['score']:.2f}" for r in col["results"]]
        assert [c["only"] for c in shown] == [r["only_here"] for r in col["results"]]
    # the two models do not agree on everything here: some photos are marked in each column
    assert any(r["only_here"] for r in answer["models"][0]["results"])
    assert page.locator(".cmp-card.only .only-badge").count() == sum(
        r["only_here"] for col in answer["models"] for r in col["results"]
    )
    agreement = answer["agreement"]
    for metric in ("overlap", "spearman", "kendall"):
        shown = page.text_content(f"#compare-summary .num[data-metric={metric}][data-pair='lite|conse']")
        assert shown == f"{agreement[metric]['lite|conse']:.2f}"
    assert f"{agreement['union']} photos in all" in page.text_content("#compare-summary")
    assert "q=a+dog+running+on+the+grass" in page.url and "models=lite%2Cconse" in page.url


def test_a_photo_shows_its_rank_under_every_model(page, server):
    answer = compare(page, server)
    only = next(r for r in answer["models"][1]["results"] if r["only_here"])  # conse found it, lite did not
    card = page.locator(f".compare-column[data-model=conse] .cmp-card[data-id='{only['id']}'] button")
    card.hover()
    assert page.locator(".cmp-card.hl").count() == 1  # only in one column
    card.click()
    page.wait_for_selector("#compare-ranks:not([hidden]) li[data-model=lite]")
    ranks = get(server, "/api/compare/ranks", q=QUERY, id=only["id"], models="lite,conse")["ranks"]
    lite = next(x for x in ranks if x["model"] == "lite")
    assert lite["rank"] > 10  # outside lite's column, and still shown
    for x in ranks:
        text = page.text_content(f"#compare-ranks li[data-model={x['model']}]")
        assert text == f"{x['model']}: #{x['rank']} of {x['of']} · {x['score']:.3f}"
    assert only["name"] in page.text_content("#compare-ranks")
    # a photo both found is highlighted in both columns
    both = next(r for r in answer["models"][0]["results"] if not r["only_here"])
    page.hover(f".compare-column[data-model=lite] .cmp-card[data-id='{both['id']}'] button")
    assert page.eval_on_selector_all(".cmp-card.hl", "cs => cs.map(c => Number(c.dataset.id))") == [both["id"]] * 2


def test_compare_by_an_uploaded_photo(page, server, lite_conse_photos):
    """The Image button: each model finds the photo's own file first; a photo's ranks come from the
    answer (no /api/compare/ranks: the page cannot send the image again); the address holds no image."""
    page.goto(server + "/")
    page.wait_for_selector("#status:has-text('28 images')")
    page.click("#tab-compare")
    page.wait_for_selector(".model-chip[data-model=conse][aria-pressed=true]")
    page.select_option("#compare-n", "10")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.set_input_files("#compare-image-file", str(lite_conse_photos / "imagenet" / "pizza.jpg"))
    page.wait_for_function(COLUMNS, arg=2)
    page.wait_for_selector("#compare-summary .num")
    assert "Compared on pizza.jpg" in page.text_content("#compare-image .chip")
    for model in ("lite", "conse"):
        first = page.locator(f".compare-column[data-model={model}] .cmp-card").first
        assert (
            first.locator(".name").text_content() == "pizza.jpg" and first.locator(".cmp-rank").text_content() == "#1"
        )
    assert page.is_visible("#compare-image-note") and "not the image" in page.text_content("#compare-image-note")
    assert "base64" not in page.url and "pizza" not in page.url and "models=lite%2Cconse" in page.url
    other = page.locator(".compare-column[data-model=conse] .cmp-card").nth(1)
    name = other.locator(".name").text_content()
    other.locator("button").click()
    page.wait_for_selector("#compare-ranks:not([hidden]) li[data-model=lite]")
    assert name in page.text_content("#compare-ranks")
    assert page.text_content("#compare-ranks li[data-model=conse]").startswith("conse: #2 of 28 · ")
    assert page.text_content("#compare-ranks li[data-model=lite]").startswith("lite: #")
    assert not any("/api/compare/ranks" in u for u in asked)
    thumb = page.get_attribute(".compare-column[data-model=lite] .cmp-card img", "src")
    page.click("#compare-image .chip button")  # × : the image goes, and with no words, the columns too
    page.wait_for_function(COLUMNS, arg=0)
    assert page.is_hidden("#compare-image") and page.is_hidden("#compare-image-note")
    # an image dropped while the Compare tab is shown is compared on, not searched or classified
    page.evaluate(
        """async (url) => {
            const dt = new DataTransfer();
            dt.items.add(new File([await (await fetch(url)).blob()], "dropped.jpg", {type: "image/jpeg"}));
            window.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        thumb,
    )
    page.wait_for_function(COLUMNS, arg=2)
    assert "Compared on dropped.jpg" in page.text_content("#compare-image .chip")
    assert page.is_visible("#panel-compare")


def test_retrieval_eval_table_on_the_folders_captions(page, server):
    compare(page, server)
    page.click("#compare-eval")
    page.wait_for_selector(".eval-table tr[data-model=conse]")
    answer = get(server, "/api/compare/eval", models="lite,conse")
    assert answer["captions"] == "captions.csv" and answer["images"] == 20
    for row in answer["models"]:
        for metric in ("R@1", "R@5", "R@10"):
            cell = page.text_content(f".eval-table tr[data-model={row['model']}] td[data-metric='{metric}']")
            assert cell == f"{row[metric] * 100:.1f}"
    assert "100 captions of 20 images" in page.text_content(".eval-table caption")


def test_a_comparison_address_restores_it_and_chips_choose_models(page, server):
    page.goto(server + "/#compare?q=a+pizza&models=conse,lite&n=10")
    page.wait_for_function(COLUMNS, arg=2)
    assert page.is_visible("#panel-compare") and page.input_value("#compare-q") == "a pizza"
    assert page.eval_on_selector_all(".compare-column", "cs => cs.map(c => c.dataset.model)") == ["conse", "lite"]
    assert page.text_content(".compare-column[data-model=lite] .cmp-card .name") == "pizza.jpg"
    # a chip off leaves one model: the page asks for a second one instead of comparing
    page.click(".model-chip[data-model=conse]")
    assert page.get_attribute(".model-chip[data-model=conse]", "aria-pressed") == "false"
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("#error:not([hidden])")
    assert "at least two models" in page.text_content("#error-text")
    page.click(".model-chip[data-model=conse]")  # back on: the comparison runs again
    page.wait_for_function("document.querySelector('#compare-summary .num') !== null")
    # Search leaves the compare address
    page.click("#tab-search")
    assert "#compare" not in page.url


def test_dark_mode_renders_the_comparison(browser, server):
    with checked_page(browser, 1280, 900, console=True, color_scheme="dark") as page:
        compare(page, server, "a red sports car")
        bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
        card = page.evaluate("getComputedStyle(document.querySelector('.cmp-card button')).backgroundColor")
        assert bg == "rgb(17, 19, 23)" and card == "rgb(26, 29, 35)"
        assert page.text_content(".compare-column[data-model=lite] .cmp-card .name") == "sports_car.jpg"


def test_the_reports_menu_opens_a_served_report(page, server):
    page.goto(server + "/")
    page.wait_for_selector("#reports-menu:not([hidden])")
    page.click("#reports-menu summary")
    link = page.locator("#reports-list a")
    assert link.count() == 1 and "Flickr vs CLIP" in link.text_content()
    assert (
        link.get_attribute("href") == "/reports/flickr-vs-clip/report.html" and link.get_attribute("target") == "_blank"
    )
    with page.context.expect_page() as opened:
        link.click()
    report = opened.value
    report.wait_for_load_state()
    assert report.text_content("h1") == "Flickr vs CLIP"
