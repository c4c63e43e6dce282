// cliplab's page: search (text, image file, "more like this"), classify, collection status.
// Plain JS, no build step; it talks only to this server's API (see cliplab/serve/API.md).
"use strict";

const PAGE = 40;          // results per request; scrolling asks for the next page
const TOKEN_KEY = "cliplab_token";

const state = {
  token: localStorage.getItem(TOKEN_KEY),
  collections: [],
  collection: null,
  query: null,            // {kind: "text", q} | {kind: "image", file} | {kind: "like", id, name}
  results: [],
  done: true,             // true when the last page came back short: nothing more to fetch
  loading: null,           // seq of the search whose page is being fetched
  seq: 0,                 // bumps on every new search, so late answers to old ones are dropped
  lightboxIndex: -1,
  classifyFiles: [],
  classifyIds: [],
};

const $ = (id) => document.getElementById(id);

// ---------- API calls ----------

let tokenPrompt = null;   // one shared prompt when several requests get 401 at once

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (state.token) headers.set("Authorization", "Bearer " + state.token);
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) {
    await askToken(state.token ? "That token was refused. Try again." : null);
    return api(path, options);
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const message = body && body.error ? body.error : `${res.status} ${res.statusText}`;
    throw new Error(message);
  }
  return body;
}

function askToken(message) {
  if (!tokenPrompt) {
    tokenPrompt = new Promise((resolve) => {
      const dialog = $("token-dialog");
      if (message) $("token-message").textContent = message;
      $("token-input").value = "";
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        saveToken($("token-input").value.trim());
        tokenPrompt = null;
        resolve();
      });
      dialog.showModal();
    });
  }
  return tokenPrompt;
}

function saveToken(token) {
  state.token = token || null;
  localStorage.setItem(TOKEN_KEY, token);
  // <img src> requests cannot carry a header: the server also accepts this cookie
  document.cookie = `${TOKEN_KEY}=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
}

// ---------- messages ----------

function showError(err) {
  $("error-text").textContent = err instanceof Error ? err.message : String(err);
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

// ---------- collections and status ----------

async function loadCollections() {
  state.collections = await api("api/collections");
  const select = $("collection");
  const current = state.collection;
  select.replaceChildren(...state.collections.map((c) => new Option(c.name, c.name)));
  state.collection = state.collections.some((c) => c.name === current) ? current
    : (state.collections[0] || {}).name || null;
  select.value = state.collection || "";
  select.hidden = state.collections.length < 2;
  renderStatus();
}

function renderStatus() {
  const c = state.collections.find((x) => x.name === state.collection);
  if (!c) { $("status").textContent = "no collections"; return; }
  const parts = [
    `${c.images.toLocaleString()} images`,
    `${c.failed.toLocaleString()} failed`,
    c.model,
    c.runtime || null,
  ].filter(Boolean);
  $("status").textContent = (state.collections.length < 2 ? c.name + " · " : "") + parts.join(" · ");
  $("status").title = `${c.folder || c.name}\nmodel ${c.model}, ${c.dim}-d` +
    (c.updated ? `\nupdated ${c.updated}` : "");
  $("status").classList.toggle("warn", c.failed > 0);
}

// ---------- search ----------

function searchParams(offset) {
  const params = { collection: state.collection || "", n: PAGE, offset };
  const threshold = parseFloat($("threshold").value);
  if (threshold > 0) params.threshold = threshold;
  const under = $("under").value.trim();
  if (under) params.under = under;
  return params;
}

function fetchPage(query, offset) {
  const params = searchParams(offset);
  if (query.kind === "image") {
    const form = new FormData();
    form.append("image", query.file, query.file.name);
    for (const [k, v] of Object.entries(params)) form.append(k, v);
    return api("api/search", { method: "POST", body: form });
  }
  if (query.kind === "like") params.like = query.id;
  else params.q = query.q;
  return api("api/search?" + new URLSearchParams(params));
}

async function startSearch(query) {
  clearError();
  state.query = query;
  state.results = [];
  state.done = false;
  state.seq += 1;
  $("results").replaceChildren();
  renderQueryImage();
  rememberQuery();
  await loadMore();
}

async function loadMore() {
  if (!state.query || state.loading === state.seq || state.done) return;
  const seq = state.seq;
  state.loading = seq;  // an older search still in flight does not block this one
  document.body.classList.add("busy");
  try {
    const answer = await fetchPage(state.query, state.results.length);
    if (seq !== state.seq) return;
    state.done = answer.results.length < PAGE;
    appendResults(answer.results);
    renderSummary(answer);
  } catch (err) {
    if (seq === state.seq) { state.done = true; showError(err); }
  } finally {
    if (state.loading === seq) state.loading = null;
    document.body.classList.toggle("busy", state.loading !== null);
    if (seq === state.seq) { renderEmpty(); fillViewport(); }
  }
}

function renderEmpty() {
  const empty = $("empty");
  const failed = !$("error").hidden;
  if (failed && !state.results.length) $("query-image").hidden = true;  // the query itself was refused
  empty.hidden = state.results.length > 0 || failed;
  if (state.query && !state.results.length) {
    empty.textContent = parseFloat($("threshold").value) > 0 || $("under").value.trim()
      ? "No images match. Lower the minimum score or clear the folder filter."
      : "No images match.";
  }
}

// keep fetching while the sentinel is on screen (a tall window shows more than one page)
function fillViewport() {
  const rect = $("more").getBoundingClientRect();
  if (!state.done && rect.top < window.innerHeight + 200) loadMore();
}

function appendResults(results) {
  const start = state.results.length;
  state.results.push(...results);
  $("results").append(...results.map((r, i) => resultCard(r, start + i)));
  updateFolderHints(results);
}

function resultCard(r, index) {
  const card = document.createElement("button");
  card.className = "card";
  card.type = "button";
  card.title = `${r.caption && r.caption !== r.name ? r.caption + "\n" : ""}${r.path}\nscore ${r.score.toFixed(3)}`;
  card.addEventListener("click", () => openLightbox(index));

  const img = document.createElement("img");
  img.src = r.thumb_url;
  img.alt = r.caption || r.name;
  img.loading = "lazy";
  img.decoding = "async";
  img.addEventListener("load", () => card.classList.add("loaded"));
  img.addEventListener("error", () => card.classList.add("broken"));

  const meta = document.createElement("span");
  meta.className = "meta";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = r.name;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = r.score.toFixed(2);
  meta.append(name, score);
  card.append(img, meta);
  return card;
}

function renderSummary(answer) {
  const n = state.results.length;
  const what = state.query.kind === "text" ? `“${state.query.q}”`
    : state.query.kind === "like" ? `images like ${state.query.name}` : state.query.file.name;
  $("summary").textContent = `${n}${state.done ? "" : "+"} result${n === 1 ? "" : "s"} for ${what} · ` +
    `${answer.model} · ${Math.round(answer.took_ms)} ms`;
}


function renderQueryImage() {
  const box = $("query-image");
  const q = state.query;
  if (!q || q.kind === "text") { box.hidden = true; return; }
  const img = $("query-image-img");
  if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
  if (q.kind === "image") {
    img.src = img.dataset.objectUrl = URL.createObjectURL(q.file);
    $("query-image-name").textContent = `Similar to ${q.file.name}`;
  } else {
    img.src = q.thumb;
    delete img.dataset.objectUrl;
    $("query-image-name").textContent = `More like ${q.name}`;
  }
  box.hidden = false;
}

function updateFolderHints(results) {
  const list = $("folders");
  const known = new Set([...list.options].map((o) => o.value));
  for (const r of results) {
    const dir = r.path.includes("/") ? r.path.slice(0, r.path.lastIndexOf("/")) : null;
    if (dir && !known.has(dir)) { known.add(dir); list.append(new Option(dir)); }
  }
}

// text queries go into the address, so a search can be bookmarked or shared
function rememberQuery() {
  const url = new URL(location.href);
  if (state.query.kind === "text") url.searchParams.set("q", state.query.q);
  else url.searchParams.delete("q");
  if (state.collection) url.searchParams.set("collection", state.collection);
  history.replaceState(null, "", url);
}

function searchText() {
  const q = $("q").value.trim();
  if (q) startSearch({ kind: "text", q });
}

function searchImage(file) {
  if (!file) return;
  // an unknown type ("") goes to the server, which names the problem if it is not an image
  if (file.type && !file.type.startsWith("image/")) { showError(`${file.name} is not an image`); return; }
  $("q").value = "";
  startSearch({ kind: "image", file });
}

function redoSearch() {
  if (state.query) startSearch(state.query);
}

// ---------- lightbox ----------

function openLightbox(index) {
  const r = state.results[index];
  if (!r) return;
  state.lightboxIndex = index;
  const img = $("lightbox-img");
  img.src = r.url;
  img.alt = r.caption || r.name;
  $("lightbox-name").textContent = r.name;
  const caption = r.caption && r.caption !== r.name ? r.caption + " · " : "";
  $("lightbox-meta").textContent = `${caption}${r.path} · score ${r.score.toFixed(3)} · #${r.rank}`;
  $("lightbox-open").href = r.url;
  $("lightbox-prev").disabled = index === 0;
  $("lightbox-next").disabled = index >= state.results.length - 1;
  if (!$("lightbox").open) $("lightbox").showModal();
}

function stepLightbox(delta) {
  const next = state.lightboxIndex + delta;
  if (next >= state.results.length - 3) loadMore();
  if (next >= 0 && next < state.results.length) openLightbox(next);
}

function moreLikeThis() {
  const r = state.results[state.lightboxIndex];
  $("lightbox").close();
  $("q").value = "";
  startSearch({ kind: "like", id: r.id, name: r.name, thumb: r.thumb_url });
  window.scrollTo({ top: 0 });
}

function classifyThis() {
  const r = state.results[state.lightboxIndex];
  $("lightbox").close();
  state.classifyFiles = [];
  state.classifyIds = [{ id: r.id, name: r.name, thumb: r.thumb_url }];
  renderClassifyInputs();
  showTab("panel-classify");
  classify();
}

// ---------- classify ----------

function setClassifyFiles(files) {
  state.classifyFiles = [...files].filter((f) => !f.type || f.type.startsWith("image/"));
  state.classifyIds = [];
  renderClassifyInputs();
  if (state.classifyFiles.length) classify();
}

function renderClassifyInputs() {
  const names = [...state.classifyFiles.map((f) => f.name), ...state.classifyIds.map((x) => x.name)];
  $("classify-files-label").textContent = names.length
    ? `${names.length} image${names.length === 1 ? "" : "s"}: ${names.join(", ")}` : "Choose or drop images…";
}

async function classify() {
  clearError();
  const labels = $("labels").value;
  if (!state.classifyFiles.length && !state.classifyIds.length) {
    showError("choose one or more images to classify");
    return;
  }
  const form = new FormData();
  form.append("labels", labels);
  form.append("templates", $("templates").value);
  form.append("k", Math.min(10, Math.max(1, labels.split(/[,\n]/).filter((s) => s.trim()).length)));
  form.append("collection", state.collection || "");
  for (const f of state.classifyFiles) form.append("images", f, f.name);
  if (state.classifyIds.length) form.append("ids", state.classifyIds.map((x) => x.id).join(","));
  const previews = [...state.classifyFiles.map((f) => URL.createObjectURL(f)), ...state.classifyIds.map((x) => x.thumb)];
  document.body.classList.add("busy");
  try {
    const answer = await api("api/classify", { method: "POST", body: form });
    $("classify-results").replaceChildren(...answer.results.map((r, i) => classifyCard(r, previews[i])));
  } catch (err) {
    showError(err);
  } finally {
    document.body.classList.remove("busy");
  }
}

function classifyCard(result, preview) {
  const card = document.createElement("article");
  card.className = "classify-card";
  const img = document.createElement("img");
  img.src = preview || "";
  img.alt = result.name;
  const body = document.createElement("div");
  body.className = "classify-body";
  const title = document.createElement("h3");
  title.textContent = result.name;
  body.append(title);
  if (result.error) {
    const p = document.createElement("p");
    p.className = "inline-error";
    p.textContent = result.error;
    body.append(p);
  } else {
    body.append(...result.predictions.map(bar));
  }
  card.append(img, body);
  return card;
}

function bar(prediction) {
  const pct = (prediction.prob * 100).toFixed(1);
  const row = document.createElement("div");
  row.className = "bar";
  row.innerHTML = `<span class="bar-label"></span><span class="bar-track"><span class="bar-fill"></span></span>` +
    `<span class="bar-value"></span>`;
  row.querySelector(".bar-label").textContent = prediction.label;
  row.querySelector(".bar-fill").style.width = `${pct}%`;
  row.querySelector(".bar-value").textContent = `${pct}%`;
  return row;
}

// ---------- tabs, drag and drop ----------

function showTab(panelId) {
  for (const tab of document.querySelectorAll(".tab")) {
    const on = tab.dataset.panel === panelId;
    tab.setAttribute("aria-selected", String(on));
    $(tab.dataset.panel).hidden = !on;
  }
}

function currentTab() {
  return $("panel-classify").hidden ? "search" : "classify";
}

function wireDragAndDrop() {
  let depth = 0;  // dragenter/dragleave fire for every child element
  const overlay = $("drop-overlay");
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  window.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    depth += 1;
    overlay.firstElementChild.textContent = currentTab() === "search"
      ? "Drop an image to search by it" : "Drop images to classify them";
    overlay.hidden = false;
  });
  window.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
  window.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    if (currentTab() === "search") searchImage(e.dataTransfer.files[0]);
    else setClassifyFiles(e.dataTransfer.files);
  });
}

// an image pasted from the clipboard (a screenshot, a copied picture) searches or classifies like a drop
function wirePaste() {
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
    if (!files.length) return;
    e.preventDefault();
    if (currentTab() === "search") searchImage(files[0]);
    else setClassifyFiles(files);
  });
}

// ---------- start ----------

function wireControls() {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); searchText(); });
  $("image-file").addEventListener("change", (e) => { searchImage(e.target.files[0]); e.target.value = ""; });
  $("threshold").addEventListener("input", (e) => {
    const v = parseFloat(e.target.value);
    $("threshold-value").textContent = v > 0 ? v.toFixed(2) : "any";
  });
  $("threshold").addEventListener("change", redoSearch);
  $("under").addEventListener("change", redoSearch);
  $("collection").addEventListener("change", (e) => {
    state.collection = e.target.value;
    renderStatus();
    redoSearch();
  });
  $("query-image-clear").addEventListener("click", () => {
    state.query = null; state.results = []; state.seq += 1;
    $("results").replaceChildren(); $("summary").textContent = ""; renderQueryImage();
    $("empty").hidden = false;
  });
  $("error-close").addEventListener("click", clearError);
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.panel));

  $("lightbox-like").addEventListener("click", moreLikeThis);
  $("lightbox-classify").addEventListener("click", classifyThis);
  $("lightbox-close").addEventListener("click", () => $("lightbox").close());
  $("lightbox-prev").addEventListener("click", () => stepLightbox(-1));
  $("lightbox-next").addEventListener("click", () => stepLightbox(1));
  $("lightbox").addEventListener("click", (e) => { if (e.target === $("lightbox")) $("lightbox").close(); });
  $("lightbox").addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") stepLightbox(-1);
    if (e.key === "ArrowRight") stepLightbox(1);
  });

  $("classify-form").addEventListener("submit", (e) => { e.preventDefault(); classify(); });
  $("classify-files").addEventListener("change", (e) => setClassifyFiles(e.target.files));

  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && document.activeElement.tagName !== "INPUT" && document.activeElement.tagName !== "TEXTAREA") {
      e.preventDefault(); showTab("panel-search"); $("q").focus();
    }
  });
  new IntersectionObserver((entries) => { if (entries[0].isIntersecting) loadMore(); },
    { rootMargin: "400px" }).observe($("more"));
  wireDragAndDrop();
  wirePaste();
}

async function start() {
  wireControls();
  if (state.token) saveToken(state.token);  // renew the cookie the images need
  try {
    const health = await api("healthz");
    $("version").textContent = `cliplab ${health.version}`;
    const params = new URLSearchParams(location.search);
    state.collection = params.get("collection");
    await loadCollections();
    setInterval(() => { if (!document.hidden) loadCollections().catch(() => {}); }, 15000);
    if (params.get("q")) { $("q").value = params.get("q"); searchText(); }
    else $("q").focus();
  } catch (err) {
    showError(err);
  }
}

start();
