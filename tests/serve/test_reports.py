"""Served `analyze` reports: listed per collection, sent only from report folders, never anything else."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from tests.helpers import ToyEncoder, make_image

PAGE = "<!DOCTYPE html><html><head><title>{0}</title></head><body><h1>{0}</h1><img src='fig.png'></body></html>"


def hand_made(folder, title="a hand-made report"):
    """A report folder as `analyze` leaves one: report.html, a figure, a data file, a sub-folder."""
    folder.mkdir(parents=True)
    (folder / "report.html").write_text(PAGE.format(title))
    make_image(folder / "fig.png")
    (folder / "notes.md").write_text("# notes\n")
    (folder / "m").mkdir()
    (folder / "m" / "metrics.json").write_text('{"ok": true}')
    (folder / ".hidden").write_text("HIDDEN-CONTENT")
    (folder / "m" / ".git").mkdir()
    (folder / "m" / ".git" / "config").write_text("HIDDEN-CONTENT")
    return folder


@pytest.fixture
def outside(tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "secret.txt").write_text("TOP-SECRET")
    return tmp_path / "secret"


@pytest.fixture
def served(tmp_path, make_client, outside):
    """A --reports folder of two reports: `r` (hand-made, with links in and out) and `empty-ish` (no
    report.html: not a report)."""
    root = tmp_path / "reports"
    r = hand_made(root / "r")
    (root / "not-a-report").mkdir()
    (root / "not-a-report" / "x.txt").write_text("x")
    os.symlink(outside / "secret.txt", r / "link-out.txt")
    os.symlink(outside, r / "dir-out")
    os.symlink(r / "notes.md", r / "link-in.md")
    os.symlink(r / ".hidden", r / "to-hidden.txt")
    client, state = make_client(reports=[root])
    return client, state, root


def test_a_real_analyze_report_is_listed_and_served(tmp_path, make_client):
    """`cliplab.analysis.analyze` with the toy encoder on 8 coloured images (the report and its files)."""
    from cliplab.analysis import analyze

    for cat, rgb in {"1_red": (220, 20, 20), "2_blue": (20, 20, 220)}.items():
        for i in range(4):
            make_image(tmp_path / "colours" / cat / f"{i}.jpg", color=tuple(max(0, c - 15 * i) for c in rgb))
    out = tmp_path / "results" / "toy-run"
    analyze(tmp_path / "colours", models=[ToyEncoder()], out=out, projections=("pca",))
    client, _ = make_client(reports=[out])  # one report folder given itself

    (row,) = client.get("/api/reports").json()["reports"]
    assert row["name"] == "toy-run" and row["url"] == "/reports/toy-run/report.html"
    assert row["title"] == "cliplab analyze: colours" and row["collection"] is None
    assert row["files"] == sum(len(f) for _, _, f in os.walk(out)) and row["files"] > 8
    assert len(row["created"]) == 19 and row["created"][10] == "T"

    r = client.get(row["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>cliplab analyze: colours</h1>" in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src 'self' data:" in csp and "script-src" not in csp
    assert client.get("/reports/toy-run/").text == r.text  # the folder itself: its report
    png = client.get("/reports/toy-run/toy/similarity_heatmap.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    js = client.get("/reports/toy-run/toy/metrics.json")
    assert js.headers["content-type"].startswith("application/json") and js.json()["model"] == "toy"
    assert client.get("/reports/toy-run/compare.md").headers["content-type"].startswith("text/markdown")


def test_reports_of_the_served_folders_and_of_a_collection_index(tmp_path, served):
    client, state, root = served
    (row,) = client.get("/api/reports").json()["reports"]  # not-a-report has no report.html
    assert row["name"] == "r" and row["title"] == "a hand-made report" and row["collection"] is None
    assert row["files"] == 7  # 4 files and 3 links to files (the hidden ones and links to folders are not counted)

    # `analyze --out INDEX_DIR/reports/NAME` while the server runs: listed at once, under the collection
    index_dir = state.source("pics").collection.index_dir
    hand_made(index_dir / "reports" / "r", title="the <b>pics</b> report")  # same name: gets -2
    hand_made(index_dir / "reports" / ".hidden-report")
    rows = client.get("/api/reports", params={"collection": "pics"}).json()["reports"]
    assert [(x["name"], x["collection"], x["title"]) for x in rows] == [
        ("r", None, "a hand-made report"),
        ("r-2", "pics", "the pics report"),
    ]
    assert client.get("/api/reports").json()["reports"] == rows
    assert "<h1>the <b>pics</b> report</h1>" in client.get("/reports/r-2/report.html").text
    r = client.get("/api/reports", params={"collection": "nope"})
    assert r.status_code == 404 and "unknown collection" in r.json()["error"]


def test_files_and_types(served):
    client, _, _ = served
    fig = client.get("/reports/r/fig.png")
    assert fig.status_code == 200 and fig.headers["content-type"] == "image/png"
    assert fig.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in fig.headers
    md = client.get("/reports/r/notes.md")
    assert md.headers["content-type"] == "text/markdown; charset=utf-8" and md.text == "# notes\n"
    assert client.get("/reports/r/m/metrics.json").json() == {"ok": True}
    assert client.get("/reports/r/link-in.md").text == "# notes\n"  # a link that stays inside: served


TRAVERSALS = [
    "/reports/nope/report.html",
    "/reports/r/missing.html",
    "/reports/not-a-report/x.txt",
    "/reports/r/m",
    "/reports/r/m/",
    "/reports/r/.hidden",
    "/reports/r/%2ehidden",
    "/reports/r/m/.git/config",
    "/reports/r/to-hidden.txt",
    "/reports/r/link-out.txt",
    "/reports/r/dir-out/secret.txt",
    "/reports/r/..%2f..%2fsecret%2fsecret.txt",
    "/reports/r/%2e%2e/%2e%2e/secret/secret.txt",
    "/reports/r/m/..%2f..%2f..%2fsecret/secret.txt",
    "/reports/r/..%5c..%5csecret%5csecret.txt",
    "/reports/r/%2fetc%2fpasswd",
    "/reports/r//etc/passwd",
    "/reports/r/report.html%00.png",
    "/reports/..%2fr/report.html",
    "/reports/%2e%2e/r/report.html",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_only_files_inside_a_report_folder(served, path):
    client, _, _ = served
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text[:80])
    assert "TOP-SECRET" not in r.text and "HIDDEN-CONTENT" not in r.text and "root:" not in r.text
    assert "error" in r.json()


def test_the_token_guards_reports(tmp_path, make_client):
    client, _ = make_client(token="s3cret", reports=[hand_made(tmp_path / "r")])
    for url in ("/api/reports", "/reports/r/report.html", "/reports/r/fig.png", "/reports/nope/x"):
        assert client.get(url).status_code == 401, url
    auth = {"Authorization": "Bearer s3cret"}
    assert client.get("/api/reports", headers=auth).json()["reports"][0]["name"] == "r"
    assert client.get("/reports/r/report.html", headers=auth).status_code == 200
    client.cookies.set("cliplab_token", "s3cret")  # what the page sets: a report's <img> tags load
    assert client.get("/reports/r/fig.png").status_code == 200


def test_serve_refuses_a_missing_reports_folder(tmp_path):
    from cliplab.cli import app

    r = CliRunner().invoke(app, ["serve", str(tmp_path), "--reports", str(tmp_path / "nope"), "--port", "0"])
    assert r.exit_code == 2, r.output
    assert "error: --reports" in r.output and "not a folder" in r.output and "Traceback" not in r.output
