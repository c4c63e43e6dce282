// cliplab's page: search (text or an expression, image file, "more/less like this" chips, filters
// kept in the address), classify, collection status.
// Plain JS, no build step; it talks only to this server's API (see cliplab/serve/API.md).
"use strict";

const PAGE = 40;          // results per request; scrolling asks for the next page
const TOKEN_KEY = "cliplab_token";

const state = {
  token: localStorage.getItem(TOKEN_KEY),
  collections: [],
  collection: null,
  query: null,            // {text, image: File | null, likes: [{id, sign, name, thumb}]}
  results: [],
  done: true,             // true when the last page came back short: nothing more to fetch
  loading: null,           // seq of the search whose page is being fetched
  seq: 0,                 // bumps on every new search, so late answers to old ones are dropped
  lightboxIndex: -1,
  names: new Map(),       // image id → file name, for chips restored from the address
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
  if (options.raw && res.ok) return res;  // a download (text, bytes): the caller reads it
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

// the collection's served reports (`cliplab analyze` output), a menu in the top bar when there are any
async function loadReports() {
  let reports = [];
  try {
    reports = (await api("api/reports?" + new URLSearchParams({ collection: state.collection || "" }))).reports;
  } catch (err) {
    reports = [];  // a server without reports: no menu
  }
  $("reports-list").replaceChildren(...reports.map((r) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = r.url;
    a.target = "_blank";
    a.rel = "noopener";
    a.textContent = r.title || r.name;
    const small = document.createElement("small");
    small.textContent = [r.name, r.created && r.created.slice(0, 16).replace("T", " ")].filter(Boolean).join(" · ");
    a.append(small);
    li.append(a);
    return li;
  }));
  $("reports-menu").hidden = !reports.length;
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

// ---------- query model ----------
// A query is the box's text (words or an expression), an uploaded image, and "like" chips:
// {text, image: File|null, likes: [{id, sign: "+"|"-", name, thumb}]}. The text and the chips make
// one expression (`"beach" + like:12 - like:7`) that goes into the address with the filters.

const FILTERS = ["after", "before", "type", "camera", "orientation", "has_gps", "under", "threshold", "mode", "sort",
  "cluster", "region", "map"];  // the last three: a selection on the Explore map (hidden inputs, shown as a chip)

// split an expression into [sign, term] at " + " / " - " outside quotes (the server parses it for real)
function splitTerms(expr) {
  const out = [];
  let sign = "+", buf = "", quoted = false;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '"') quoted = !quoted;
    const apart = (i === 0 || /\s/.test(expr[i - 1])) && (i + 1 === expr.length || /\s/.test(expr[i + 1]));
    if (!quoted && (c === "+" || c === "-") && apart) {
      if (buf.trim()) out.push([sign, buf.trim()]);
      sign = c; buf = "";
      continue;
    }
    buf += c;
  }
  if (buf.trim()) out.push([sign, buf.trim()]);
  return out;
}

// an expression from the address → the box's text and the like chips (plain `like:ID` terms)
function queryFromExpression(expr) {
  const likes = [], rest = [];
  for (const [sign, term] of splitTerms(expr)) {
    const m = /^like:(\d+)$/.exec(term);
    if (m && !likes.some((l) => l.id === m[1])) likes.push({ id: m[1], sign, name: state.names.get(m[1]) || `#${m[1]}`, thumb: thumbUrl(m[1]) });
    else rest.push(rest.length || sign === "-" ? `${sign} ${term}` : term);
  }
  if (!likes.length) return { text: expr.trim(), image: null, likes };  // as typed
  return { text: rest.join(" "), image: null, likes };
}

function expressionOf(query) {
  const parts = query.text ? [query.text] : [];
  for (const l of query.likes) {
    parts.push(parts.length || l.sign === "-" ? `${l.sign} like:${l.id}` : `like:${l.id}`);
  }
  return parts.join(" ");
}

function thumbUrl(id) {
  return `thumb/${encodeURIComponent(state.collection || "")}/${id}`;
}

function isEmptyQuery(query) {
  return !query || (!query.text && !query.image && !query.likes.length);
}

// ---------- filters and the address ----------

function filterValues() {
  const out = {};
  for (const name of FILTERS) {
    const el = $(name);
    if (el.type === "checkbox") { if (el.checked) out[name] = "true"; }
    else if (name === "threshold") { if (parseFloat(el.value) > 0) out[name] = parseFloat(el.value).toFixed(2); }
    else if (el.value.trim() && !(el.closest("[hidden]"))) out[name] = el.value.trim();
  }
  return out;
}

function setFilters(params) {
  for (const name of FILTERS) {
    const el = $(name);
    const value = params.get(name) || "";
    if (el.type === "checkbox") el.checked = value === "true" || value === "1";
    else if (el.tagName === "SELECT") {
      if (value && ![...el.options].some((o) => o.value === value)) el.append(new Option(value, value));
      el.value = value;
    } else el.value = name === "threshold" ? (value || "0") : value;
  }
  showThreshold();
  renderFiltersClear();
}

function renderFiltersClear() {
  $("filters-clear").hidden = !Object.keys(filterValues()).length;
}

function showThreshold() {
  const v = parseFloat($("threshold").value);
  $("threshold-value").textContent = v > 0 ? v.toFixed(2) : "any";
}

// the search and its filters go into the address: a search can be bookmarked, reloaded, shared,
// and back/forward step through searches
function rememberQuery(push) {
  const url = new URL(location.href);
  url.search = "";
  const expr = state.query && !state.query.image ? expressionOf(state.query) : "";
  if (expr) url.searchParams.set("q", expr);
  if (state.collection) url.searchParams.set("collection", state.collection);
  for (const [k, v] of Object.entries(filterValues())) url.searchParams.set(k, v);
  if (url.href === location.href) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function restoreFromAddress() {
  const params = new URLSearchParams(location.search);
  setFilters(params);
  const q = params.get("q") || "";
  $("q").value = "";
  if (q) {
    const query = queryFromExpression(q);
    $("q").value = query.text;
    startSearch(query, false);
  } else {
    clearSearch();
  }
}

// ---------- facets ----------

async function loadFacets() {
  const group = $("meta-filters");
  let facets = null;
  try {
    facets = await api("api/facets?" + new URLSearchParams({ collection: state.collection || "" }));
  } catch (err) {
    facets = null;  // an index built from embeddings has no photo metadata: no such filters
  }
  group.hidden = !facets;
  if (!facets) return;
  fillSelect($("type"), "any type", facets.types.map((t) => [t.type, `${t.type} (${t.count})`]));
  fillSelect($("camera"), "any camera", facets.cameras.map((c) => [c.camera, `${c.camera} (${c.count})`]));
  $("years").replaceChildren(...facets.years.map((y) => new Option(`${y.year} (${y.count})`, y.year)));
  $("has_gps").closest("label").hidden = !facets.with_gps && !$("has_gps").checked;
}

function fillSelect(select, anyLabel, options) {
  const current = select.value;
  select.replaceChildren(new Option(anyLabel, ""), ...options.map(([value, label]) => new Option(label, value)));
  if (current && !options.some(([value]) => value === current)) select.append(new Option(current, current));
  select.value = current;
}

// ---------- search ----------

function searchParams(offset) {
  return { collection: state.collection || "", n: PAGE, offset, ...filterValues() };
}

function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`${file.name}: could not be read`));
    reader.readAsDataURL(file);
  });
}

async function fetchPage(query, offset) {
  const params = searchParams(offset);
  const expr = expressionOf(query);
  if (query.image) {  // the image goes as a base64 term, with the expression and the filters
    const body = { ...params, terms: [{ image: await readDataUrl(query.image), name: query.image.name }] };
    if (expr) body.q = expr;
    return api("api/search", { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" } });
  }
  return api("api/search?" + new URLSearchParams({ q: expr, ...params }));
}

async function startSearch(query, push = true) {
  clearError();
  if (isEmptyQuery(query)) { clearSearch(); rememberQuery(push); return; }
  state.query = query;
  state.results = [];
  state.done = false;
  state.seq += 1;
  $("results").replaceChildren();
  $("cutoff").hidden = true;
  renderChips();
  rememberQuery(push);
  renderFiltersClear();
  await loadMore();
}

function clearSearch() {
  state.query = null; state.results = []; state.seq += 1; state.done = true;
  $("results").replaceChildren(); $("summary").textContent = ""; $("cutoff").hidden = true;
  renderChips();
  $("empty").hidden = false;
  $("empty").textContent = EMPTY_HINT;
}

const EMPTY_HINT = "Type a description or an expression and press Enter, pick an image, or drop one anywhere on the page.";

async function loadMore() {
  if (!state.query || state.loading === state.seq || state.done) return;
  const seq = state.seq;
  state.loading = seq;  // an older search still in flight does not block this one
  document.body.classList.add("busy");
  let answer = null;
  try {
    answer = await fetchPage(state.query, state.results.length);
    if (seq !== state.seq) return;
    state.done = answer.results.length < PAGE;
    appendResults(answer.results);
    renderSummary(answer);
  } catch (err) {
    if (seq === state.seq) { state.done = true; showError(err); }
  } finally {
    if (state.loading === seq) state.loading = null;
    document.body.classList.toggle("busy", state.loading !== null);
    if (seq === state.seq) { renderEmpty(answer); fillViewport(); }
  }
}

function renderEmpty(answer) {
  const empty = $("empty");
  const failed = !$("error").hidden;
  empty.hidden = state.results.length > 0 || failed;
  if (state.query && !state.results.length) {
    empty.textContent = (answer && answer.message) || "No images match.";
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
  for (const r of results) state.names.set(String(r.id), r.name);
  $("results").append(...results.map((r, i) => resultCard(r, start + i)));
  updateFolderHints(results);
}

// a video moment's time, 83.4 → "1:23"
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function hasTime(r) {
  return typeof r.timestamp === "number" && Number.isFinite(r.timestamp);
}

// a result's thumbnail (search, compare and explore cards)
function thumbImg(r) {
  const img = document.createElement("img");
  img.src = r.thumb_url;
  img.alt = r.caption || r.name;
  img.loading = "lazy";
  img.decoding = "async";
  return img;
}

function resultCard(r, index) {
  const card = document.createElement("div");
  card.className = "card";
  card.setAttribute("role", "listitem");
  const open = document.createElement("button");
  open.className = "card-open";
  open.type = "button";
  open.title = `${r.caption && r.caption !== r.name ? r.caption + "\n" : ""}${r.path}\nscore ${r.score.toFixed(3)}`;
  open.addEventListener("click", () => openLightbox(index));

  const img = thumbImg(r);
  img.addEventListener("load", () => card.classList.add("loaded"));
  img.addEventListener("error", () => card.classList.add("broken"));

  const meta = document.createElement("span");
  meta.className = "meta";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = r.name;
  meta.append(name);
  if (hasTime(r)) {
    const at = document.createElement("span");
    at.className = "at";
    at.textContent = `@ ${clock(r.timestamp)}`;
    meta.append(at);
  }
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = r.score.toFixed(2);
  meta.append(score);
  open.append(img, meta);
  if (r.taken && $("sort").value) open.append(takenDate(r));  // what a date sort orders by

  const actions = document.createElement("span");
  actions.className = "card-actions";
  actions.append(feedbackButton(r, "+"), feedbackButton(r, "-"));
  card.append(open, actions);
  return card;
}

// the day a photo was taken; the tooltip says where that came from (a file's date is a guess)
function takenDate(r) {
  const at = document.createElement("time");
  at.className = "taken";
  at.dateTime = r.taken;
  at.textContent = r.taken.slice(0, 10);
  at.title = r.taken_from === "mtime" ? "file date (no date in the photo's metadata)" : `taken: ${r.taken} (${r.taken_from})`;
  return at;
}

function feedbackButton(r, sign) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = sign === "+" ? "feedback more-like" : "feedback less-like";
  b.textContent = sign === "+" ? "+" : "−";
  b.title = sign === "+" ? "More like this" : "Less like this";
  b.setAttribute("aria-label", `${b.title}: ${r.name}`);
  b.addEventListener("click", () => addLike(r, sign));
  return b;
}

// relevance feedback: + like:ID / - like:ID join the current query, which runs again
function addLike(r, sign) {
  const base = state.query || { text: $("q").value.trim(), image: null, likes: [] };
  const likes = base.likes.filter((l) => l.id !== String(r.id));
  likes.push({ id: String(r.id), sign, name: r.name, thumb: r.thumb_url });
  startSearch({ ...base, text: $("q").value.trim(), likes });
  window.scrollTo({ top: 0 });
}

function renderSummary(answer) {
  const n = state.results.length;
  const q = state.query;
  const what = [];
  if (q.text) what.push(`“${q.text}”`);
  if (q.image) what.push(q.image.name);
  for (const l of q.likes) {
    const sign = l.sign === "-" ? "− " : what.length ? "+ " : "";
    what.push(`${sign}images like ${l.name}`);
  }
  const mode = answer.mode ? ` · ${answer.mode}` : "";
  $("summary").textContent = `${n}${state.done ? "" : "+"} result${n === 1 ? "" : "s"} for ${what.join(" ")}` +
    `${mode} · ${answer.model} · ${Math.round(answer.took_ms)} ms`;
  const sort = answer.sort || {};
  const cut = $("cutoff");
  cut.hidden = !sort.rule;
  if (sort.rule) {
    const order = sort.by === "date" ? "oldest first" : "newest first";
    const score = typeof sort.cutoff === "number" ? `score ≥ ${sort.cutoff.toFixed(3)}` : "no semantic cut-off";
    cut.textContent = `Date order (${order}) among the ${sort.relevant} relevant: ${score}` +
      (typeof sort.top === "number" ? ` (best ${sort.top.toFixed(3)})` : "") + ".";
    cut.title = "Cut-off rule: " + sort.rule;
  }
}

// the query's images and like chips, each removable
function renderChips() {
  const box = $("query-image");
  for (const img of box.querySelectorAll("img[data-object-url]")) URL.revokeObjectURL(img.src);
  const q = state.query;
  const chips = [];
  if (q && q.image) {
    chips.push(chip(URL.createObjectURL(q.image), `Similar to ${q.image.name}`, "image", () => {
      startSearch({ ...state.query, image: null });
    }, true));
  }
  const where = $("cluster").value ? `In cluster ${$("cluster").value}` : $("region").value ? "In the selected region" : "";
  if (where) {
    chips.push(chip(null, `${where} of the ${$("map").value || "collection's"} map`, "chip-map", () => {
      setMapFilter(null);
    }));
  }
  for (const l of (q ? q.likes : [])) {
    const label = `${l.sign === "+" ? "More" : "Less"} like ${l.name}`;
    chips.push(chip(l.thumb, label, l.sign === "+" ? "chip-more" : "chip-less", () => {
      startSearch({ ...state.query, text: $("q").value.trim(), likes: state.query.likes.filter((x) => x !== l) });
    }));
  }
  box.replaceChildren(...chips);
  box.hidden = !chips.length;
}

function chip(src, label, kind, remove, objectUrl = false) {
  const el = document.createElement("span");
  el.className = `chip ${kind}`;
  el.setAttribute("role", "listitem");
  if (src) {  // the map filter's chip has no picture
    const img = document.createElement("img");
    img.src = src;
    img.alt = "";
    if (objectUrl) img.dataset.objectUrl = "1";
    el.append(img);
  }
  const text = document.createElement("span");
  text.textContent = label;
  const x = document.createElement("button");
  x.type = "button";
  x.className = "icon-button";
  x.textContent = "×";
  x.setAttribute("aria-label", `Remove “${label}” from the query`);
  x.addEventListener("click", remove);
  el.append(text, x);
  return el;
}

// a cluster or region of a model's map as a search filter ({cluster | region, map}), or null to drop it
function setMapFilter(filter) {
  $("cluster").value = filter && filter.cluster != null ? String(filter.cluster) : "";
  $("region").value = filter && filter.region ? filter.region : "";
  $("map").value = filter ? filter.map || "" : "";
  renderChips();
  redoSearch();
}

function updateFolderHints(results) {
  const list = $("folders");
  const known = new Set([...list.options].map((o) => o.value));
  for (const r of results) {
    const dir = r.path.includes("/") ? r.path.slice(0, r.path.lastIndexOf("/")) : null;
    if (dir && !known.has(dir)) { known.add(dir); list.append(new Option(dir)); }
  }
}

function searchText() {
  const text = $("q").value.trim();
  const keep = state.query || { image: null, likes: [] };
  startSearch({ text, image: keep.image, likes: keep.likes });
}

function searchImage(file) {
  if (!file) return;
  // an unknown type ("") goes to the server, which names the problem if it is not an image
  if (file.type && !file.type.startsWith("image/")) { showError(`${file.name} is not an image`); return; }
  $("q").value = "";
  startSearch({ text: "", image: file, likes: [] });
}

function redoSearch() {
  renderFiltersClear();
  if (state.query) startSearch(state.query);
  else { rememberQuery(true); renderChips(); }
}

// ---------- lightbox ----------

function openLightbox(index) {
  const r = state.results[index];
  if (!r) return;
  state.lightboxIndex = index;
  const img = $("lightbox-img");
  const video = $("lightbox-video");
  const isVideo = r.media === "video" || hasTime(r);
  img.hidden = isVideo;
  video.hidden = !isVideo;
  if (isVideo) {  // play from the moment that matched
    video.src = (r.video_url || r.url) + (hasTime(r) ? `#t=${r.timestamp}` : "");
    img.removeAttribute("src");
  } else {
    video.pause();
    video.removeAttribute("src");
    img.src = r.url;
    img.alt = r.caption || r.name;
  }
  $("lightbox-name").textContent = r.name + (hasTime(r) ? ` @ ${clock(r.timestamp)}` : "");
  const caption = r.caption && r.caption !== r.name ? r.caption + " · " : "";
  $("lightbox-meta").textContent = `${caption}${r.path} · score ${r.score.toFixed(3)} · #${r.rank}`;
  renderOcr(typeof r.ocr === "string" ? r.ocr : "");
  $("lightbox-open").href = r.url;
  $("lightbox-prev").disabled = index === 0;
  $("lightbox-next").disabled = index >= state.results.length - 1;
  if (!$("lightbox").open) $("lightbox").showModal();
}

// text read from the image, the query's words marked
function renderOcr(text) {
  const box = $("lightbox-ocr");
  box.hidden = !text;
  if (!text) { box.replaceChildren(); return; }
  const words = (state.query && state.query.text || "").toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) || [];
  const escaped = [...new Set(words)].map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const parts = escaped.length ? text.split(new RegExp(`(${escaped.join("|")})`, "giu")) : [text];
  box.replaceChildren(...parts.filter(Boolean).map((part) => {
    if (!escaped.length || !words.includes(part.toLowerCase())) return document.createTextNode(part);
    const mark = document.createElement("mark");
    mark.textContent = part;
    return mark;
  }));
}

function stepLightbox(delta) {
  const next = state.lightboxIndex + delta;
  if (next >= state.results.length - 3) loadMore();
  if (next >= 0 && next < state.results.length) openLightbox(next);
}

function likeFromLightbox(sign) {
  const r = state.results[state.lightboxIndex];
  $("lightbox").close();
  addLike(r, sign);
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
  document.dispatchEvent(new CustomEvent("cliplab:tab", { detail: panelId }));  // compare.js, explore.js
}

function currentTab() {
  const tab = document.querySelector('.tab[aria-selected="true"]');
  return tab ? tab.dataset.panel.replace("panel-", "") : "search";
}

function wireDragAndDrop() {
  let depth = 0;  // dragenter/dragleave fire for every child element
  const overlay = $("drop-overlay");
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  window.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    depth += 1;
    const tab = currentTab();
    overlay.firstElementChild.textContent = tab === "search" ? "Drop an image to search by it"
      : tab === "compare" ? "Drop an image to compare the models on it" : "Drop images to classify them";
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
    else if (currentTab() === "compare") compareImage(e.dataTransfer.files[0]);
    else setClassifyFiles(e.dataTransfer.files);
  });
}

// the Compare tab's image query: compare.js listens (it owns that view)
function compareImage(file) {
  if (file) document.dispatchEvent(new CustomEvent("cliplab:compare-image", { detail: file }));
}

// an image pasted from the clipboard (a screenshot, a copied picture) searches or classifies like a drop
function wirePaste() {
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
    if (!files.length) return;
    e.preventDefault();
    if (currentTab() === "search") searchImage(files[0]);
    else if (currentTab() === "compare") compareImage(files[0]);
    else setClassifyFiles(files);
  });
}

// ---------- start ----------

function wireControls() {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); searchText(); });
  $("image-file").addEventListener("change", (e) => { searchImage(e.target.files[0]); e.target.value = ""; });
  $("threshold").addEventListener("input", showThreshold);
  for (const name of FILTERS) $(name).addEventListener("change", redoSearch);
  $("filters-clear").addEventListener("click", () => { setFilters(new URLSearchParams()); redoSearch(); });
  $("collection").addEventListener("change", async (e) => {
    state.collection = e.target.value;
    renderStatus();
    if (state.query) state.query = { ...state.query, likes: [] };  // ids belong to one collection
    await loadFacets();
    loadReports();
    if ($("cluster").value || $("region").value) setMapFilter(null);  // a map belongs to one collection
    else redoSearch();
    document.dispatchEvent(new CustomEvent("cliplab:collection"));
  });
  window.addEventListener("popstate", async () => {
    const collection = new URLSearchParams(location.search).get("collection");
    if (collection && collection !== state.collection) {
      state.collection = collection; $("collection").value = collection; renderStatus(); await loadFacets();
    }
    restoreFromAddress();
  });
  $("error-close").addEventListener("click", clearError);
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.panel));

  $("lightbox-like").addEventListener("click", () => likeFromLightbox("+"));
  $("lightbox-unlike").addEventListener("click", () => likeFromLightbox("-"));
  $("lightbox").addEventListener("close", () => $("lightbox-video").pause());
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
    await loadFacets();
    loadReports();
    setInterval(() => { if (!document.hidden) loadCollections().catch(() => {}); }, 15000);
    restoreFromAddress();
    if (!params.get("q")) $("q").focus();
    document.dispatchEvent(new CustomEvent("cliplab:ready"));  // the other views start from the address
  } catch (err) {
    showError(err);
  }
}

// what compare.js and explore.js share with this file (plain scripts, no modules: no build step)
window.cliplab = { api, showError, clearError, state, showTab, setMapFilter, thumbUrl, thumbImg, readDataUrl, chip, $ };

start();
