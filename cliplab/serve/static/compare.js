// cliplab's Compare view: one query → one column per model (GET/POST /api/compare), the agreement
// figures, a photo's rank under every model (/api/compare/ranks) and the retrieval eval on the
// folder's captions (/api/compare/eval). An image (button, drop, paste) is POSTed as base64: every
// model encodes it itself, and the answer carries every listed photo's ranks (the image is not sent
// again). Address: #compare?q=…&models=a,b&n=20 — never the image.
// Plain JS, no build step; shares app.js's helpers through window.cliplab.
"use strict";

(() => {
  const { api, showError, clearError, state, showTab, readDataUrl, chip, $, thumbImg } = window.cliplab;
  const MAX_MODELS = 4;

  const cmp = {
    chosen: [],      // the models pressed, in the collection's order
    query: null,     // the query's text ("" with an image alone; null: nothing compared)
    image: null,     // the File compared on, or null
    answer: null,    // the last /api/compare answer (an image's answer carries `ranks` by path)
    pinned: null,    // id of the photo whose ranks are shown
    seq: 0,          // late answers to an older comparison are dropped
  };

  function collectionModels() {
    const c = state.collections.find((x) => x.name === state.collection);
    return (c && c.models) || (c ? [c.model] : []);
  }

  // ---------- model chips ----------

  function renderModelChips() {
    const models = collectionModels();
    cmp.chosen = cmp.chosen.filter((m) => models.includes(m));
    if (!cmp.chosen.length) cmp.chosen = models.slice(0, MAX_MODELS);
    const chips = models.map((m) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "model-chip";
      b.dataset.model = m;
      b.textContent = m;
      b.setAttribute("aria-pressed", String(cmp.chosen.includes(m)));
      b.addEventListener("click", () => toggleModel(m));
      return b;
    });
    $("compare-models").replaceChildren(...chips);
    if (models.length < 2) {
      const note = document.createElement("span");
      note.className = "muted";
      note.textContent = "This collection has one model's index: add another (cliplab index DIR --model conse) to compare.";
      $("compare-models").append(note);
    }
  }

  function toggleModel(model) {
    const on = cmp.chosen.includes(model);
    if (!on && cmp.chosen.length >= MAX_MODELS) { showError(`compare at most ${MAX_MODELS} models at once`); return; }
    const models = collectionModels();
    cmp.chosen = on ? cmp.chosen.filter((m) => m !== model) : models.filter((m) => m === model || cmp.chosen.includes(m));
    renderModelChips();
    if (cmp.query != null && cmp.chosen.length >= 2) run(cmp.query);
  }

  // ---------- the comparison ----------

  // the query is words or an expression (like:ID terms too), and/or the image (POSTed as base64)
  async function fetchCompare(text) {
    const params = { collection: state.collection || "", q: text, models: cmp.chosen.join(","), n: $("compare-n").value };
    if (!cmp.image) return api("api/compare?" + new URLSearchParams(params));
    const body = { ...params, models: cmp.chosen, image: await readDataUrl(cmp.image), image_name: cmp.image.name };
    if (!text) delete body.q;
    return api("api/compare", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  }

  // ---------- the image query ----------

  function compareImage(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) { showError(`${file.name} is not an image`); return; }
    cmp.image = file;
    renderImageChip();
    run($("compare-q").value.trim());
  }

  function renderImageChip() {
    const box = $("compare-image");
    for (const img of box.querySelectorAll("img[data-object-url]")) URL.revokeObjectURL(img.src);
    const chips = cmp.image ? [chip(URL.createObjectURL(cmp.image), `Compared on ${cmp.image.name}`, "image", dropImage, true)] : [];
    box.replaceChildren(...chips);
    box.hidden = !chips.length;
    $("compare-image-note").hidden = !cmp.image;
  }

  function dropImage() {
    cmp.image = null;
    renderImageChip();
    const text = $("compare-q").value.trim();
    if (text) { run(text); return; }
    cmp.seq += 1; cmp.query = null; cmp.answer = null; cmp.pinned = null;
    $("compare-columns").replaceChildren(); $("compare-summary").textContent = "";
    $("compare-ranks").hidden = true; $("compare-empty").hidden = false;
    remember(true);
  }

  async function run(query, push = true) {
    clearError();
    if (cmp.chosen.length < 2) { showError("pick at least two models to compare"); return; }
    cmp.query = query;
    cmp.pinned = null;
    $("compare-ranks").hidden = true;
    remember(push);
    const seq = ++cmp.seq;
    document.body.classList.add("busy");
    try {
      const answer = await fetchCompare(query);
      if (seq !== cmp.seq) return;
      cmp.answer = answer;
      renderColumns(answer);
      renderAgreement(answer);
    } catch (err) {
      if (seq === cmp.seq) showError(err);
    } finally {
      if (seq === cmp.seq) document.body.classList.remove("busy");
    }
  }

  function renderColumns(answer) {
    const columns = answer.models.map((m) => {
      const col = document.createElement("section");
      col.className = "compare-column";
      col.dataset.model = m.model;
      const head = document.createElement("h3");
      head.textContent = m.model;
      const meta = document.createElement("small");
      meta.className = "muted";
      meta.textContent = ` ${Math.round(m.took_ms)} ms` + (m.missing ? ` · ${m.missing} not in the served index` : "");
      head.append(meta);
      const list = document.createElement("ol");
      list.className = "compare-list";
      list.append(...m.results.map((r) => compareCard(r)));
      col.append(head, list);
      return col;
    });
    $("compare-columns").style.setProperty("--columns", String(answer.models.length));
    $("compare-columns").replaceChildren(...columns);
    $("compare-empty").hidden = answer.models.some((m) => m.results.length);
    if (!$("compare-empty").hidden) $("compare-empty").textContent = "No images match.";
  }

  function compareCard(r) {
    const li = document.createElement("li");
    li.className = "cmp-card" + (r.only_here ? " only" : "");
    li.dataset.id = String(r.id);
    const button = document.createElement("button");
    button.type = "button";
    button.title = `${r.path}\nscore ${r.score.toFixed(3)}` + (r.only_here ? "\nfound by this model only" : "");
    const img = thumbImg(r);
    const rank = document.createElement("span");
    rank.className = "cmp-rank";
    rank.textContent = `#${r.rank}`;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = r.name;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = r.score.toFixed(2);
    button.append(img, rank, name, score);
    if (r.only_here) {
      const badge = document.createElement("span");
      badge.className = "only-badge";
      badge.textContent = "only here";
      button.append(badge);
    }
    button.addEventListener("mouseenter", () => highlight(r.id));
    button.addEventListener("mouseleave", () => highlight(cmp.pinned));
    button.addEventListener("focus", () => highlight(r.id));
    button.addEventListener("click", () => showRanks(r));
    li.append(button);
    return li;
  }

  function highlight(id) {
    for (const card of document.querySelectorAll("#compare-columns .cmp-card")) {
      card.classList.toggle("hl", id != null && card.dataset.id === String(id));
    }
  }

  // overlap@k, Spearman and Kendall: one line for two models, one per pair for more
  function renderAgreement(answer) {
    const a = answer.agreement || {};
    const box = $("compare-summary");
    box.replaceChildren();
    const number = (metric, pair, value) => {
      const s = document.createElement("span");
      s.className = "num";
      s.dataset.metric = metric;
      s.dataset.pair = pair;
      s.textContent = typeof value === "number" ? value.toFixed(2) : "–";
      return s;
    };
    const pairs = Object.keys(a.overlap || {});
    const text = (t) => { const s = document.createElement("span"); s.textContent = t; return s; };
    box.append(text(`“${answer.query}” · top ${answer.k} · ${a.union} photos in all`));
    for (const pair of pairs) {
      const line = document.createElement("span");
      line.className = "pair";
      if (pairs.length > 1) line.append(`${pair.replace("|", " vs ")}: `);
      line.append(`overlap@${answer.k} `, number("overlap", pair, a.overlap[pair]),
        " · Spearman ", number("spearman", pair, (a.spearman || {})[pair]),
        " · Kendall ", number("kendall", pair, (a.kendall || {})[pair]));
      box.append(line);
    }
    if (pairs.length > 1) {
      const mean = text("mean overlap ");
      mean.append(number("mean_overlap", "", a.mean_overlap));
      box.append(mean);
    }
    box.append(text(`${Math.round(answer.took_ms)} ms`));
  }

  // a photo's rank under every model (also where it is outside a column's top n): an image's answer
  // holds them all; for words, /api/compare/ranks
  async function showRanks(r) {
    cmp.pinned = r.id;
    highlight(r.id);
    const box = $("compare-ranks");
    let ranks = cmp.answer && cmp.answer.ranks ? cmp.answer.ranks[r.path] : null;
    if (!ranks) {
      try {
        const params = { collection: state.collection || "", q: cmp.query, id: String(r.id), models: cmp.chosen.join(",") };
        ranks = (await api("api/compare/ranks?" + new URLSearchParams(params))).ranks;
      } catch (err) {
        showError(err);
        return;
      }
    }
    if (cmp.pinned !== r.id) return;
    const img = document.createElement("img");
    img.src = r.thumb_url;
    img.alt = "";
    const name = document.createElement("strong");
    name.textContent = r.name;
    const list = document.createElement("ul");
    list.append(...ranks.map((x) => {
      const li = document.createElement("li");
      li.dataset.model = x.model;
      li.textContent = x.rank == null ? `${x.model}: not in its index`
        : `${x.model}: #${x.rank} of ${x.of} · ${x.score.toFixed(3)}`;
      return li;
    }));
    const close = document.createElement("button");
    close.type = "button";
    close.className = "icon-button";
    close.textContent = "×";
    close.setAttribute("aria-label", "Close the ranks");
    close.addEventListener("click", () => { cmp.pinned = null; box.hidden = true; highlight(null); });
    box.replaceChildren(img, name, list, close);
    box.hidden = false;
  }

  // ---------- retrieval eval on the folder's captions ----------

  async function runEval() {
    const box = $("compare-eval-box");
    const button = $("compare-eval");
    button.disabled = true;
    box.hidden = false;
    box.textContent = "Evaluating on the folder's captions…";
    try {
      const params = { collection: state.collection || "", models: (cmp.chosen.length ? cmp.chosen : collectionModels()).join(",") };
      const answer = await api("api/compare/eval?" + new URLSearchParams(params));
      box.replaceChildren(evalTable(answer));
      button.disabled = false;
    } catch (err) {  // no captions (404): the server's line, and the button stays off
      box.textContent = err.message;
      box.classList.add("muted");
      button.title = err.message;
    }
  }

  function evalTable(answer) {
    const cols = ["R@1", "R@5", "R@10"];
    const table = document.createElement("table");
    table.className = "eval-table";
    const cap = document.createElement("caption");
    cap.textContent = `Text → image retrieval: ${answer.captions_count} captions of ${answer.images} images (${answer.captions})`;
    const head = document.createElement("tr");
    for (const h of ["model", ...cols]) {
      const th = document.createElement("th");
      th.textContent = h;
      head.append(th);
    }
    table.append(cap, head);
    for (const m of answer.models) {
      const tr = document.createElement("tr");
      tr.dataset.model = m.model;
      const name = document.createElement("th");
      name.textContent = m.model;
      tr.append(name);
      for (const c of cols) {
        const td = document.createElement("td");
        td.dataset.metric = c;
        td.textContent = typeof m[c] === "number" ? (m[c] * 100).toFixed(1) : "–";
        tr.append(td);
      }
      table.append(tr);
    }
    return table;
  }

  // ---------- the address: #compare?q=…&models=…&n=… ----------

  function hashParams() {
    const hash = location.hash;
    return hash.startsWith("#compare") ? new URLSearchParams(hash.slice(hash.indexOf("?") + 1 || hash.length)) : null;
  }

  function remember(push) {
    const params = new URLSearchParams();
    if (cmp.query) params.set("q", cmp.query);
    if (cmp.chosen.length) params.set("models", cmp.chosen.join(","));
    params.set("n", $("compare-n").value);
    const url = new URL(location.href);
    url.hash = "compare?" + params;
    if (url.href === location.href) return;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }

  function restore() {
    const params = hashParams();
    if (!params) return;
    if ($("panel-compare").hidden) showTab("panel-compare");
    const models = collectionModels();
    const wanted = (params.get("models") || "").split(",").filter((m) => models.includes(m));
    if (wanted.length) cmp.chosen = wanted;
    renderModelChips();
    if (params.get("n")) $("compare-n").value = params.get("n");
    const q = params.get("q") || "";
    $("compare-q").value = q;
    if (q && (cmp.query !== q || !cmp.answer)) {
      if (cmp.image && cmp.query !== q) { cmp.image = null; renderImageChip(); }  // an address holds no image
      run(q, false);
    }
  }

  // ---------- wiring ----------

  $("compare-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("compare-q").value.trim();
    if (text || cmp.image) run(text);
  });
  $("compare-n").addEventListener("change", () => { if (cmp.query != null) run(cmp.query); });
  $("compare-image-file").addEventListener("change", (e) => { compareImage(e.target.files[0]); e.target.value = ""; });
  document.addEventListener("cliplab:compare-image", (e) => compareImage(e.detail));  // a drop or paste (app.js)
  $("compare-eval").addEventListener("click", runEval);
  document.addEventListener("cliplab:ready", () => { renderModelChips(); restore(); });
  document.addEventListener("cliplab:collection", () => {
    cmp.query = null; cmp.answer = null; cmp.image = null;
    renderImageChip();
    $("compare-columns").replaceChildren(); $("compare-summary").textContent = "";
    $("compare-eval-box").hidden = true; $("compare-eval").disabled = false;
    renderModelChips();
  });
  window.addEventListener("hashchange", restore);
  document.addEventListener("cliplab:tab", (e) => {
    if (e.detail === "panel-compare") {
      renderModelChips();
      if (!hashParams()) remember(false);
      $("compare-q").focus();
    } else if (hashParams()) {
      history.replaceState(null, "", location.pathname + location.search);
    }
  });
})();
