// cliplab's Explore view: the collection as a 2D map (/api/map, drawn by mapview.js), its clusters
// named and listed (/api/clusters), a cluster's or a shift-dragged region's photos (/api/map/members),
// which become a search filter or a path list. Polls while the server computes a first map (202).
// Address: #explore?model=…  Plain JS, no build step; shares app.js's helpers through window.cliplab.
"use strict";

(() => {
  const { api, showError, clearError, state, showTab, setMapFilter, thumbUrl, mapView, clusterColour, $, thumbImg } = window.cliplab;
  const POLL_MS = 1000, POLL_MAX = 600;  // a map being computed: ask every second, for 10 minutes at most

  const ex = { model: null, shown: null, stale: true, seq: 0, clusters: [], selection: null };
  const map = mapView($("map-canvas"), {
    thumbUrl,
    hover: showTip,
    click: (i) => { if (map.cluster(i) >= 0) selectCluster(map.cluster(i)); },
    region: selectRegion,
    selected: () => ex.selection,
  });

  // ---------- loading ----------

  function collectionModels() {
    const c = state.collections.find((x) => x.name === state.collection);
    return (c && c.models) || (c ? [c.model] : []);
  }

  async function load() {
    const seq = ++ex.seq;
    clearError();
    ex.stale = false;
    const models = collectionModels();
    if (!models.includes(ex.model)) ex.model = models[0] || null;
    $("map-model").replaceChildren(...models.map((m) => new Option(m, m)));
    $("map-model").value = ex.model || "";
    $("map-model-field").hidden = models.length < 2;
    remember();
    const base = { collection: state.collection || "", model: ex.model || "" };
    try {
      let page = null;
      const points = { id: [], x: [], y: [], cluster: [] };
      for (let offset = 0; offset != null; offset = page.next_offset) {
        page = await ready(seq, "api/map?" + new URLSearchParams({ ...base, offset, limit: 50000 }), "points");
        if (!page) return;
        for (const k of Object.keys(points)) points[k].push(...page.points[k]);
      }
      const clusters = await ready(seq, "api/clusters?" + new URLSearchParams(base), "clusters");
      if (!clusters) return;
      ex.clusters = clusters.clusters;
      ex.shown = ex.model;
      ex.selection = null;
      $("selection").hidden = true;
      renderSide(page, clusters);
      map.setData(points, page.bounds, ex.clusters);
      note(page.stale ? "This map is older than the collection: it is being updated." : "");
    } catch (err) {
      if (seq === ex.seq) { note(""); showError(err); }
    }
  }

  // an answer that holds `field`, asking again every second while the server answers 202 (computing);
  // null when a newer load started meanwhile
  async function ready(seq, path, field) {
    for (let polls = 0; ; polls++) {
      const body = await api(path);
      if (seq !== ex.seq) return null;
      if (body[field]) return body;
      if (polls >= POLL_MAX) throw new Error("the map is still being computed: come back later");
      const stage = body.stage ? `: ${body.stage}` : "";
      note(`Computing the ${ex.model} map${stage}… ${Math.round((body.done || 0) * 100)} %`);
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (seq !== ex.seq) return null;
    }
  }

  function note(text) {
    $("map-note").textContent = text;
    $("map-note").hidden = !text;
  }

  // the photo under the pointer: its thumbnail and its cluster's name
  function showTip(i, x, y) {
    const tip = $("map-tip");
    tip.hidden = i < 0;
    if (i < 0) return;
    const c = map.cluster(i);
    const info = clusterInfo(c);
    const img = document.createElement("img");
    img.src = thumbUrl(map.id(i));
    img.alt = "";
    const text = document.createElement("span");
    text.textContent = info && info.names[0] ? `${info.names[0].name} · cluster ${c}` : `cluster ${c}`;
    tip.replaceChildren(img, text);
    tip.dataset.id = String(map.id(i));
    const box = $("map-canvas").getBoundingClientRect();
    tip.style.left = `${Math.min(x + 14, box.width - 150)}px`;
    tip.style.top = `${Math.min(y + 14, box.height - 140)}px`;
  }

  // ---------- the side panel ----------

  function renderSide(page, clusters) {
    const summary = clusters.summary || {};
    $("map-summary").textContent = summary.text ||
      `${page.count} photos in ${ex.clusters.length} groups`;
    $("map-summary").title = `${page.method} map of ${page.count} photos · ${clusters.rule || ""}`;
    $("cluster-list").replaceChildren(...ex.clusters.map((c) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "cluster-item";
      b.dataset.cluster = String(c.cluster);
      b.style.setProperty("--swatch", clusterColour(c.cluster));
      const title = document.createElement("span");
      title.className = "cluster-name";
      title.textContent = (c.names[0] || { name: `cluster ${c.cluster}` }).name;
      const size = document.createElement("span");
      size.className = "cluster-size";
      size.textContent = c.size.toLocaleString();
      const names = document.createElement("span");
      names.className = "cluster-names muted";
      names.textContent = c.names.slice(0, 3).map((x) => `${x.name} ${x.score.toFixed(2)}`).join(" · ") +
        (c.dates ? ` · ${c.dates.from} … ${c.dates.to}` : "");
      b.append(title, size, names);
      b.addEventListener("click", () => selectCluster(c.cluster));
      li.append(b);
      return li;
    }));
  }

  // ---------- the selection: a cluster or a region ----------

  function clusterInfo(c) {
    return ex.clusters.find((x) => x.cluster === c);
  }

  function selectionParams(sel) {
    const p = { collection: state.collection || "", model: ex.model || "" };
    if (sel.kind === "cluster") p.cluster = String(sel.cluster);
    else p.region = sel.region.map((v) => v.toFixed(4)).join(",");
    return p;
  }

  function selectCluster(c) {
    const info = clusterInfo(c);
    const name = info && info.names[0] ? info.names[0].name : `cluster ${c}`;
    select({ kind: "cluster", cluster: c, title: `Cluster ${c}: ${name}` });
    for (const b of document.querySelectorAll(".cluster-item")) b.classList.toggle("on", b.dataset.cluster === String(c));
  }

  function selectRegion(region) {
    select({ kind: "region", region, title: "Selected region" });
    for (const b of document.querySelectorAll(".cluster-item")) b.classList.remove("on");
  }

  async function select(sel) {
    ex.selection = sel;
    map.requestDraw();
    $("selection").hidden = false;
    $("selection-title").textContent = sel.title;
    $("selection-count").textContent = "…";
    $("selection-grid").replaceChildren();
    try {
      const answer = await api("api/map/members?" + new URLSearchParams({ ...selectionParams(sel), n: 60 }));
      if (ex.selection !== sel) return;
      $("selection-count").textContent = `${answer.total.toLocaleString()} photo${answer.total === 1 ? "" : "s"}` +
        (answer.total > answer.results.length ? ` (first ${answer.results.length} shown)` : "");
      $("selection-grid").replaceChildren(...answer.results.map(memberCard));
    } catch (err) {
      showError(err);
    }
  }

  function memberCard(r) {
    const a = document.createElement("a");
    a.className = "member";  // not .card: the Search tab's results are the page's .card elements
    a.href = r.url;
    a.target = "_blank";
    a.rel = "noopener";
    a.title = r.path;
    a.dataset.id = String(r.id);
    a.setAttribute("role", "listitem");
    const img = thumbImg(r);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = r.name;
    a.append(img, name);
    return a;
  }

  function searchInSelection() {
    const sel = ex.selection;
    if (!sel) return;
    showTab("panel-search");
    const p = selectionParams(sel);
    setMapFilter({ cluster: p.cluster, region: p.region, map: ex.model });
    $("q").focus();
  }

  async function exportPaths() {
    const sel = ex.selection;
    if (!sel) return;
    try {
      const res = await api("api/map/members?" + new URLSearchParams({ ...selectionParams(sel), format: "paths" }), { raw: true });
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = `${state.collection}-${sel.kind === "cluster" ? "cluster-" + sel.cluster : "region"}.txt`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      showError(err);
    }
  }

  // ---------- the address: #explore?model=… ----------

  function inAddress() {
    return location.hash.startsWith("#explore");
  }

  function remember() {
    if ($("panel-explore").hidden) return;
    const url = new URL(location.href);
    url.hash = "explore" + (ex.model ? "?" + new URLSearchParams({ model: ex.model }) : "");
    if (url.href !== location.href) history.replaceState(null, "", url);
  }

  function restore() {
    if (!inAddress()) return;
    const model = new URLSearchParams(location.hash.slice(location.hash.indexOf("?") + 1 || location.hash.length)).get("model");
    if (model && model !== ex.model) { ex.model = model; ex.stale = true; }
    if ($("panel-explore").hidden) showTab("panel-explore");
    else if (ex.stale) load();
  }

  // ---------- wiring ----------

  $("map-zoom-in").addEventListener("click", () => map.zoomBy(1.5));
  $("map-zoom-out").addEventListener("click", () => map.zoomBy(1 / 1.5));
  $("map-reset").addEventListener("click", () => map.fit());
  $("map-model").addEventListener("change", (e) => { ex.model = e.target.value; load(); });
  $("selection-search").addEventListener("click", searchInSelection);
  $("selection-export").addEventListener("click", exportPaths);
  $("selection-close").addEventListener("click", () => { ex.selection = null; $("selection").hidden = true; map.requestDraw(); });
  document.addEventListener("cliplab:ready", restore);
  window.addEventListener("hashchange", restore);
  document.addEventListener("cliplab:collection", () => {
    ex.stale = true; ex.shown = null; ex.selection = null; $("selection").hidden = true;
    map.clear();
    if (!$("panel-explore").hidden) load();
  });
  document.addEventListener("cliplab:tab", (e) => {
    if (e.detail === "panel-explore") {
      remember();
      map.resize();
      if (ex.stale) load();
    } else if (inAddress()) {
      history.replaceState(null, "", location.pathname + location.search);
    }
  });

  // for the browser tests and benchmarks/map_frames.py: the view, hit tests, and redraw times
  window.cliplab.explore = {
    get model() { return ex.shown; },  // the model whose map is drawn (null until one is)
    get view() { return map.view; },
    get count() { return map.count; },
    get drawMs() { return map.drawMs; },
    get thumbsLoaded() { return map.thumbsLoaded; },
    screenOf: (id) => map.screenOf(id),
    idAt(clientX, clientY) {
      const rect = $("map-canvas").getBoundingClientRect();
      const i = map.pointAt(clientX - rect.left, clientY - rect.top);
      return i < 0 ? null : map.id(i);
    },
    panBy: (dx, dy) => map.panBy(dx, dy),
    zoomAt: (x, y, factor) => map.zoomAt(x, y, factor),
  };
})();
