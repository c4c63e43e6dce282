"""compare.md + report.html: the models side by side, and a reading written from the numbers.

The HTML is one self-contained file (inline CSS, no scripts, every figure inlined as a data: URI),
so it can be mailed or opened anywhere; the data files it lists stay in the results folder.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path

from cliplab.analysis import plots
from cliplab.analysis.dataset import AnalysisDataset

TIE = 0.02  # score differences below this are called "about even"
NO_ALIGNMENT_SD = 0.2  # a matched-vs-mismatched gap under 0.2 pooled sds: no usable alignment
MAX_CATEGORY_ROWS = 40

COLUMNS = [  # (key, header, kind)
    ("dim", "dim", "int"),
    ("matched", "matched sim (mean ± sd)", "pm"),
    ("mismatched", "mismatched sim (mean ± sd)", "pm"),
    ("gap", "gap", "signed"),
    ("gap_in_sd", "gap / sd", "signed"),
    ("i2t_top1", "image→caption top-1", "pct"),
    ("t2i_top1", "caption→image top-1", "pct"),
    ("category_top1", "category top-1", "pct"),
    ("purity", "k-means purity", "num"),
    ("nmi", "NMI", "num"),
    ("ari", "ARI", "num"),
    ("silhouette", "silhouette", "num"),
    ("modality_gap", "modality gap", "num"),
]


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _ok(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def fmt(v, kind: str = "num") -> str:
    if not _ok(v):
        return "—"
    if kind == "int":
        return str(int(v))
    if kind == "pct":
        return f"{v:.1%}"
    if kind == "signed":
        return f"{v:+.3f}"
    return f"{v:.3f}"


def cell(m: dict, key: str, kind: str) -> str:
    if kind == "pm":
        return f"{fmt(m.get(key + '_mean'))} ± {fmt(m.get(key + '_sd'))}"
    return fmt(m.get(key), kind)


def _rank(results: dict, key: str) -> list[tuple[str, float]]:
    vals = [(s, m.get(key)) for s, m in results.items() if _ok(m.get(key))]
    return sorted(vals, key=lambda x: -x[1])


def _leaders(ranked: list[tuple[str, float]], eps: float) -> list[str]:
    """Models within `eps` of the best value (reported together, as a tie)."""
    return [s for s, v in ranked if ranked[0][1] - v <= eps]


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _versus(ranked: list[tuple[str, float]], kind: str = "num") -> str:
    return ", ".join(f"{s} {fmt(v, kind)}" for s, v in ranked[1:])


SEPARATION = [
    ("nmi", "k-means NMI", "num"),
    ("ari", "k-means ARI", "num"),
    ("silhouette", "category silhouette", "num"),
]
# What ranks the models: what a user of a model gets from it (text↔image retrieval and zero-shot
# category choice). Clustering scores (above) describe the image space alone; a baseline whose PCA is
# fitted on this very dataset can lead on them while being useless for search.
RANKING = [
    ("t2i_top1", "caption→image top-1"),
    ("i2t_top1", "image→caption top-1"),
    ("category_top1", "category top-1 (zero-shot)"),
]
SMALL_SAMPLE = 100  # below this many images, a few points of difference is within noise


def _ranking(results: dict, n_images: int) -> list[str]:
    """The models ranked by the mean of their retrieval and zero-shot figures (RANKING), saying which."""
    used = [(k, label) for k, label in RANKING if any(_ok(m.get(k)) for m in results.values())]
    if len(results) < 2 or not used:
        return []
    mean = {
        s: sum(m[k] for k, _ in used if _ok(m.get(k))) / max(1, sum(_ok(m.get(k)) for k, _ in used))
        for s, m in results.items()
    }
    order = sorted(results, key=lambda s: -mean[s])
    out = [
        f"Ranking by retrieval and zero-shot figures (mean of {', '.join(label for _, label in used)}): "
        + " > ".join(f"{s} {fmt(mean[s], 'pct')}" for s in order)
        + "."
    ]
    if n_images < SMALL_SAMPLE:
        out.append(f"Only {n_images} images: differences of a few points in these scores are within noise.")
    return out


def _separation(results: dict, n_cat: int, n_images: int) -> list[str]:
    """Which model's image space clusters by category best (one vote per clustering measure, ties in
    votes broken by mean rank). Descriptive only: the ranking of models is `_ranking`'s."""
    wins: dict[str, list[str]] = {s: [] for s in results}
    ranks: dict[str, list[int]] = {s: [] for s in results}
    leaders = []
    for key, label, kind in SEPARATION:
        ranked = _rank(results, key)
        if not ranked:
            continue
        for pos, (s, _) in enumerate(ranked):
            ranks[s].append(pos)
        tied = [s for s, v in ranked if ranked[0][1] - v < TIE]
        for s in tied:
            wins[s].append(f"{label} {fmt(results[s][key], kind)}")
        leaders.append((key, label, kind, tied, ranked))
    if not leaders:
        return []
    if len(results) == 1:
        (only,) = results
        return [
            f"{only} on the {n_cat} categories: "
            + ", ".join(f"{label} {fmt(results[only].get(key), kind)}" for key, label, kind, _, _ in leaders)
            + "."
        ]
    order = sorted(results, key=lambda s: (-len(wins[s]), sum(ranks[s]) / max(len(ranks[s]), 1)))
    best = order[0]
    out = [
        f"{best} separates the {n_cat} categories best in its image space alone: it leads (or ties, within "
        f"{TIE}) on {len(wins[best])} of {len(leaders)} clustering measures ({', '.join(wins[best])}); "
        "these say nothing about matching images with text."
    ]
    others = [
        f"{label}: {', '.join(tied)} ({fmt(ranked[0][1], kind)} vs {best} {fmt(results[best].get(key), kind)})"
        for key, label, kind, tied, ranked in leaders
        if best not in tied
    ]
    if others:
        out.append("Where another model leads — " + "; ".join(others) + ".")
    return out


def reading(ds: AnalysisDataset, results: dict) -> list[str]:
    """Short sentences derived from the numbers: which model separates the categories best, which
    aligns images with their captions, and what to be careful about."""
    out: list[str] = _ranking(results, len(ds.images))
    n_cat = len(ds.categories)
    if n_cat >= 2:
        out += _separation(results, n_cat, len(ds.images))
    else:
        out.append("The dataset has a single category, so category separation is not measured.")

    by_gap = _rank(results, "gap")
    if by_gap:
        lead = _leaders(by_gap, 0.005)
        s, v = by_gap[0]
        rest = ", ".join(f"{x} {fmt(y, 'signed')}" for x, y in by_gap if x not in lead)
        verb = "shows" if len(lead) == 1 else "tie for"
        out.append(
            f"{_names(lead)} {verb} the largest matched-vs-mismatched caption similarity gap "
            f"({fmt(v, 'signed')}, {fmt(results[s].get('gap_in_sd'), 'signed')} sd)"
            + (f"; {rest}" if rest else "")
            + "."
        )
        flat = [x for x, m in results.items() if _ok(m.get("gap_in_sd")) and m["gap_in_sd"] < NO_ALIGNMENT_SD]
        if flat:
            out.append(
                f"{', '.join(flat)}: matched captions are barely more similar than mismatched ones "
                f"(gap under {NO_ALIGNMENT_SD} sd): no usable image–text alignment."
            )
    for key, what, chance_key in (
        ("i2t_top1", "image→caption", "i2t_chance"),
        ("t2i_top1", "caption→image", "t2i_chance"),
    ):
        ranked = _rank(results, key)
        if ranked:
            lead = _leaders(ranked, 0.005)
            s, v = ranked[0]
            rest = ", ".join(f"{x} {fmt(y, 'pct')}" for x, y in ranked if x not in lead)
            out.append(
                f"Best {what} top-1: {_names(lead)} {fmt(v, 'pct')} "
                f"(chance {fmt(results[s].get(chance_key), 'pct')}" + (f"; {rest}" if rest else "") + ")."
            )
    by_mg = _rank(results, "modality_gap")
    if len(by_mg) > 1:
        far = _leaders(by_mg, 0.005)
        near = [s for s, v in by_mg if v - by_mg[-1][1] <= 0.005]
        if len(far) < len(by_mg):
            out.append(
                f"The image and caption clouds sit furthest apart for {_names(far)} (centroid distance "
                f"{fmt(by_mg[0][1])}) and closest for {_names(near)} ({fmt(by_mg[-1][1])}); see the projections."
            )
    for s, m in results.items():
        if m.get("model_info", {}).get("pca_fitted_on"):
            out.append(f"{s} fits its PCA on this very dataset; its numbers are not comparable across datasets.")
        if m.get("failed_images"):
            out.append(f"{s}: {m['failed_images']} image(s) could not be read and were left out.")
    if ds.generated_captions:
        out.append(
            "This dataset has no captions: one caption per category was generated "
            '("a photo of a {category}."), so caption numbers measure zero-shot classification.'
        )
    return out


# --- markdown -------------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _category_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    slugs = list(results)
    cats: dict[str, dict] = {}
    for s in slugs:
        for r in results[s].get("per_category", []):
            cats.setdefault(r["category"], {"images": r["images"]})[s] = r
    header = ["category", "images"] + [f"{s} i2t / cat top-1" for s in slugs]
    rows = []
    for c, d in list(cats.items())[:MAX_CATEGORY_ROWS]:
        rows.append(
            [c, str(d["images"])]
            + [
                f"{fmt(d[s]['i2t_top1'], 'pct')} / {fmt(d[s]['category_top1'], 'pct')}" if s in d else "—"
                for s in slugs
            ]
        )
    return header, rows


def write_markdown(ds: AnalysisDataset, results: dict, read: list[str], out: Path) -> Path:
    slugs = list(results)
    s = ds.summary()
    parts = [
        f"# cliplab analyze: {Path(s['source']).name}",
        "",
        f"{s['images']} images, {s['captions']} captions, {_plural(s['categories'], 'category', 'categories')} "
        f"(layout: {s['layout']}; source: `{s['source']}`).",
        "",
    ]
    parts += [f"- note: {n}" for n in s["notes"]]
    parts += ["", "## Reading", ""] + [f"- {r}" for r in read]
    parts += [
        "",
        "## Models side by side",
        "",
        _md_table(
            ["model"] + [h for _, h, _ in COLUMNS],
            [[sl] + [cell(results[sl], k, kind) for k, _, kind in COLUMNS] for sl in slugs],
        ),
    ]
    parts += [
        "",
        "matched = cosine of an image with its own caption(s); mismatched = with every other caption; "
        "gap / sd = the gap over the pooled sd. top-1 = the best-scoring item is a correct one "
        "(ties count against the model). category top-1 = an image's best caption is of its category. "
        "NMI / ARI / purity: k-means (k = number of categories) on image embeddings vs the categories. "
        "modality gap = distance between the image and caption centroids.",
        "",
    ]
    header, rows = _category_rows(results)
    parts += ["## Per category (image→caption top-1 / category top-1)", "", _md_table(header, rows), ""]
    if len({r["category"] for m in results.values() for r in m.get("per_category", [])}) > MAX_CATEGORY_ROWS:
        parts.append(f"(first {MAX_CATEGORY_ROWS} categories; every category is in <model>/per_category.csv)\n")
    parts += ["## Figures", "", "![comparison](comparison.png)", ""]
    for sl in slugs:
        parts.append(f"### {sl}")
        parts += [f"![{name}]({sl}/{f})" for name, f in results[sl].get("figures", {}).items()]
        parts.append("")
    path = out / "compare.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# --- html -----------------------------------------------------------------------------------------

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f2f2f2}img{max-width:100%;border:1px solid #ddd;margin:6px 0}
.figs{display:flex;flex-wrap:wrap;gap:12px}.figs figure{margin:0;flex:1 1 480px}figcaption{font-size:12px;color:#555}
.note{color:#8a5a00}"""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(ds: AnalysisDataset, results: dict, read: list[str], out: Path) -> Path:
    e = html.escape
    s = ds.summary()
    slugs = list(results)
    body = [
        f"<h1>cliplab analyze: {e(Path(s['source']).name)}</h1>",
        f"<p>{s['images']} images, {s['captions']} captions, {_plural(s['categories'], 'category', 'categories')} "
        f"(layout: {e(s['layout'])}; source: <code>{e(s['source'])}</code>).</p>",
    ]
    body += [f"<p class='note'>note: {e(n)}</p>" for n in s["notes"]]
    body += ["<h2>Reading</h2><ul>"] + [f"<li>{e(r)}</li>" for r in read] + ["</ul>"]
    body += [
        "<h2>Models side by side</h2>",
        _html_table(
            ["model"] + [h for _, h, _ in COLUMNS],
            [[sl] + [cell(results[sl], k, kind) for k, _, kind in COLUMNS] for sl in slugs],
        ),
    ]
    if (out / "comparison.png").is_file():
        body.append(f"<img src='{_data_uri(out / 'comparison.png')}' alt='comparison of the models'>")
    header, rows = _category_rows(results)
    body += ["<h2>Per category</h2><p>image→caption top-1 / category top-1</p>", _html_table(header, rows)]
    for sl in slugs:
        m = results[sl]
        body.append(
            f"<h2>{e(sl)}</h2><p><code>{e(str(m.get('model')))}</code>, dim {m.get('dim')}, "
            f"{m.get('images')} images, {m.get('captions')} captions. Data files (in the results folder, "
            f"<code>{e(sl)}/</code>): " + ", ".join(f"<code>{e(f)}</code>" for f in _model_files(out / sl)) + "</p>"
        )
        figs = [
            f"<figure><img src='{_data_uri(out / sl / f)}' alt='{e(name)}'><figcaption>{e(name)}</figcaption></figure>"
            for name, f in m.get("figures", {}).items()
            if (out / sl / f).is_file()
        ]
        body.append("<div class='figs'>" + "".join(figs) + "</div>")
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>cliplab analyze</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    path = out / "report.html"
    path.write_text(doc, encoding="utf-8")
    return path


def _data_uri(path: Path) -> str:
    """A PNG inlined, so report.html is one file that opens anywhere (mail, another machine)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _model_files(folder: Path) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.endswith((".csv", ".npy", ".json"))) if folder.is_dir() else []


def write_report(ds: AnalysisDataset, results: dict, out: str | Path) -> tuple[list[str], dict]:
    """compare.md, report.html and comparison.png under `out`; returns (reading, files)."""
    out = Path(out)
    read = reading(ds, results)
    files = {"comparison": plots.comparison_bars(results, out / "comparison.png").name}
    files["markdown"] = write_markdown(ds, results, read, out).name
    files["html"] = write_html(ds, results, read, out).name
    return read, files
