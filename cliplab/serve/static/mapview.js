// The Explore view's map on a <canvas>: points (id, x, y, cluster) coloured by cluster, cluster outlines
// and names, thumbnails when few points are on screen; pan (drag), zoom (wheel, pinch, zoomAt), hover,
// click and shift-drag (a region) reported to explore.js through `hooks`.
// Kept smooth at 10,000 points: dots are batched into one path per cluster colour, hit tests go through
// a uniform grid, drawing happens once per animation frame, thumbnails load a few at a time and only
// for points still on screen. Plain JS, no build step.
"use strict";

(() => {
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#8cd17d", "#499894", "#d37295"];
  const THUMB_PX = 44;          // a thumbnail's side on the map
  const THUMBS_WHEN = 250;      // draw thumbnails when at most this many points are on screen
  const MAX_IN_FLIGHT = 6;      // thumbnail requests at once
  const MAX_CACHED = 600;       // thumbnails kept decoded

  const colour = (c) => (c < 0 ? "#999" : PALETTE[c % PALETTE.length]);

  // hooks: thumbUrl(id), hover(i, x, y) (i = -1: nothing), click(i), region([x0, y0, x1, y1] in map units),
  // selected() → {cluster} | {region} | null (drawn highlighted)
  function mapView(canvas, hooks) {
    const ctx = canvas.getContext("2d");
    const m = {
      n: 0, ids: [], xs: null, ys: null, cl: null, bounds: [0, 0, 1, 1], byCluster: new Map(), clusters: [],
      grid: null, view: { s: 1, ox: 0, oy: 0 }, fit: 1, width: 0, height: 0, loaded: false, queued: false,
      rect: null, hover: -1, thumbs: new Map(), wanted: [], inFlight: 0, drawMs: [], theme: null,
    };

    // points: {id: [...], x: [...], y: [...], cluster: [...]} (the /api/map columns), clusters: /api/clusters' list
    function setData(points, bounds, clusters) {
      m.n = points.id.length;
      m.ids = points.id;
      m.xs = Float32Array.from(points.x);
      m.ys = Float32Array.from(points.y);
      m.cl = Int32Array.from(points.cluster);
      m.bounds = bounds;
      m.clusters = clusters;
      m.byCluster = new Map();
      for (let i = 0; i < m.n; i++) {
        if (!m.byCluster.has(m.cl[i])) m.byCluster.set(m.cl[i], []);
        m.byCluster.get(m.cl[i]).push(i);
      }
      m.grid = buildGrid();
      m.loaded = true;
      m.hover = -1;
      fit();
    }

    function clear() {
      m.loaded = false;
      m.thumbs.clear();
      requestDraw();
    }

    // a uniform grid over the map (CSR layout: cell → its points), about 4 points a cell
    function buildGrid() {
      const [x0, y0, x1, y1] = m.bounds;
      const side = Math.max(1, Math.ceil(Math.sqrt(m.n / 4)));
      const cw = (x1 - x0) / side || 1, ch = (y1 - y0) / side || 1;
      const cellOf = (i) => Math.min(side - 1, Math.max(0, Math.floor((m.xs[i] - x0) / cw))) +
        side * Math.min(side - 1, Math.max(0, Math.floor((m.ys[i] - y0) / ch)));
      const start = new Int32Array(side * side + 1);
      for (let i = 0; i < m.n; i++) start[cellOf(i) + 1]++;
      for (let c = 0; c < side * side; c++) start[c + 1] += start[c];
      const fill = start.slice(0, -1), items = new Int32Array(m.n);
      for (let i = 0; i < m.n; i++) items[fill[cellOf(i)]++] = i;
      return { x0, y0, cw, ch, side, start, items };
    }

    // the points of the grid cells that overlap a rectangle (map units)
    function* pointsIn(wx0, wy0, wx1, wy1) {
      const g = m.grid;
      const clamp = (v) => Math.min(g.side - 1, Math.max(0, v));
      const cx0 = clamp(Math.floor((wx0 - g.x0) / g.cw)), cx1 = clamp(Math.floor((wx1 - g.x0) / g.cw));
      const cy0 = clamp(Math.floor((wy0 - g.y0) / g.ch)), cy1 = clamp(Math.floor((wy1 - g.y0) / g.ch));
      for (let cy = cy0; cy <= cy1; cy++) {
        for (let cx = cx0; cx <= cx1; cx++) {
          const c = cx + g.side * cy;
          for (let k = g.start[c]; k < g.start[c + 1]; k++) yield g.items[k];
        }
      }
    }

    // the point under a canvas position (CSS pixels), or -1
    function pointAt(px, py, radius = 8) {
      if (!m.loaded) return -1;
      const { s, ox, oy } = m.view;
      const wx = (px - ox) / s, wy = (py - oy) / s, r = radius / s;
      let best = -1, bestD = r * r;
      for (const i of pointsIn(wx - r, wy - r, wx + r, wy + r)) {
        const d = (m.xs[i] - wx) ** 2 + (m.ys[i] - wy) ** 2;
        if (d <= bestD) { best = i; bestD = d; }
      }
      return best;
    }

    // ---------- view: map → canvas is (x * s + ox, y * s + oy), in CSS pixels ----------

    function fit() {
      const [x0, y0, x1, y1] = m.bounds;
      const pad = 16 + THUMB_PX / 2, tools = 44;  // a thumbnail at the edge stays whole, clear of the buttons
      const w = m.width - 2 * pad - tools, h = m.height - 2 * pad;
      const s = Math.min(w / (x1 - x0 || 1), h / (y1 - y0 || 1));
      m.fit = s > 0 ? s : 1;
      m.view = { s: m.fit, ox: pad + w / 2 - m.fit * (x0 + x1) / 2, oy: pad + h / 2 - m.fit * (y0 + y1) / 2 };
      requestDraw();
    }

    function zoomAt(px, py, factor) {
      const v = m.view;
      const s = Math.min(m.fit * 400, Math.max(m.fit * 0.5, v.s * factor));
      const f = s / v.s;
      m.view = { s, ox: px - (px - v.ox) * f, oy: py - (py - v.oy) * f };
      requestDraw();
    }

    function panBy(dx, dy) {
      m.view = { ...m.view, ox: m.view.ox + dx, oy: m.view.oy + dy };
      requestDraw();
    }

    function resize() {
      const rect = canvas.getBoundingClientRect();
      if (!rect.width || !rect.height) return;
      const dpr = window.devicePixelRatio || 1;
      const first = !m.width;
      m.width = rect.width; m.height = rect.height;
      canvas.width = Math.round(rect.width * dpr);
      canvas.height = Math.round(rect.height * dpr);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      if (first && m.loaded) fit(); else requestDraw();
    }

    // ---------- drawing ----------

    function requestDraw() {
      if (m.queued) return;
      m.queued = true;
      requestAnimationFrame(() => { m.queued = false; draw(); });
    }

    function readTheme() {
      const css = getComputedStyle(document.documentElement);
      m.theme = { bg: css.getPropertyValue("--surface").trim(), text: css.getPropertyValue("--text").trim(),
        accent: css.getPropertyValue("--accent").trim() };
    }

    function draw() {
      const t0 = performance.now();
      if (!m.theme) readTheme();
      const { s, ox, oy } = m.view;
      const W = m.width, H = m.height;
      ctx.fillStyle = m.theme.bg;
      ctx.fillRect(0, 0, W, H);
      if (!m.loaded) return;
      const selected = hooks.selected();
      drawHulls(false, selected);
      const r = Math.min(4, 1.6 + Math.log2(s / m.fit) * 0.5);
      for (const [c, members] of m.byCluster) {
        ctx.fillStyle = colour(c);
        ctx.beginPath();
        for (const i of members) {
          const x = m.xs[i] * s + ox, y = m.ys[i] * s + oy;
          if (x > -r && y > -r && x < W + r && y < H + r) ctx.rect(x - r, y - r, 2 * r, 2 * r);
        }
        ctx.fill();
      }
      drawThumbs();
      drawHulls(true, selected);
      drawRegion(selected);
      if (m.hover >= 0) {
        ctx.strokeStyle = m.theme.text;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(m.xs[m.hover] * s + ox, m.ys[m.hover] * s + oy, Math.max(6, r + 3), 0, 2 * Math.PI);
        ctx.stroke();
      }
      m.drawMs.push(performance.now() - t0);
      if (m.drawMs.length > 2000) m.drawMs.splice(0, 1000);
    }

    // outlines first (under the dots), names last (over them)
    function drawHulls(labels, selected) {
      const { s, ox, oy } = m.view;
      const chosen = selected && selected.cluster != null ? selected.cluster : null;
      ctx.font = "600 12px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (const c of m.clusters) {
        if (!labels && c.hull && c.hull.length > 2) {
          ctx.beginPath();
          c.hull.forEach(([x, y], k) => (k ? ctx.lineTo(x * s + ox, y * s + oy) : ctx.moveTo(x * s + ox, y * s + oy)));
          ctx.closePath();
          ctx.globalAlpha = c.cluster === chosen ? 0.2 : 0.07;
          ctx.fillStyle = colour(c.cluster);
          ctx.fill();
          ctx.globalAlpha = c.cluster === chosen ? 1 : 0.55;
          ctx.strokeStyle = colour(c.cluster);
          ctx.lineWidth = c.cluster === chosen ? 2.5 : 1.2;
          ctx.stroke();
          ctx.globalAlpha = 1;
        } else if (labels && c.center) {
          const label = (c.names[0] || { name: `cluster ${c.cluster}` }).name;
          const x = c.center[0] * s + ox, y = c.center[1] * s + oy;
          const w = ctx.measureText(label).width + 12;
          ctx.globalAlpha = 0.85;
          ctx.fillStyle = m.theme.bg;
          ctx.beginPath();
          ctx.roundRect(x - w / 2, y - 10, w, 20, 10);
          ctx.fill();
          ctx.globalAlpha = 1;
          ctx.strokeStyle = colour(c.cluster);
          ctx.lineWidth = 1;
          ctx.stroke();
          ctx.fillStyle = m.theme.text;
          ctx.fillText(label, x, y + 0.5);
        }
      }
    }

    function drawThumbs() {
      const { s, ox, oy } = m.view;
      const visible = [];
      for (const i of pointsIn(-ox / s, -oy / s, (m.width - ox) / s, (m.height - oy) / s)) {
        visible.push(i);
        if (visible.length > THUMBS_WHEN) { m.wanted = []; return; }
      }
      m.wanted = visible.map((i) => m.ids[i]);
      const h = THUMB_PX / 2;
      for (const i of visible) {
        const t = thumb(m.ids[i]);
        if (!t || !t.ok) continue;
        const x = m.xs[i] * s + ox, y = m.ys[i] * s + oy;
        const side = Math.min(t.img.naturalWidth, t.img.naturalHeight);  // a centred square, like object-fit: cover
        ctx.drawImage(t.img, (t.img.naturalWidth - side) / 2, (t.img.naturalHeight - side) / 2, side, side,
          x - h, y - h, THUMB_PX, THUMB_PX);
        ctx.strokeStyle = colour(m.cl[i]);
        ctx.lineWidth = 2;
        ctx.strokeRect(x - h, y - h, THUMB_PX, THUMB_PX);
      }
      pump();
    }

    // the rectangle being dragged, else the selected region
    function drawRegion(selected) {
      const { s, ox, oy } = m.view;
      const box = m.rect || (selected && selected.region
        ? selected.region.map((v, k) => (k % 2 ? v * s + oy : v * s + ox)) : null);
      if (!box) return;
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = m.theme.accent;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
      ctx.setLineDash([]);
    }

    // ---------- thumbnails: lazily, at most MAX_IN_FLIGHT at once, only those still on screen ----------

    function thumb(id) {
      const t = m.thumbs.get(id);
      if (t) { m.thumbs.delete(id); m.thumbs.set(id, t); }  // most recently used last
      return t;
    }

    function pump() {
      for (const id of m.wanted) {
        if (m.inFlight >= MAX_IN_FLIGHT) break;
        if (m.thumbs.has(id)) continue;
        const t = { img: new Image(), ok: false };
        m.thumbs.set(id, t);
        m.inFlight++;
        t.img.decoding = "async";
        const done = (ok) => { t.ok = ok; m.inFlight--; requestDraw(); };
        t.img.onload = () => done(true);
        t.img.onerror = () => done(false);
        t.img.src = hooks.thumbUrl(id);
      }
      while (m.thumbs.size > MAX_CACHED) m.thumbs.delete(m.thumbs.keys().next().value);
    }

    // ---------- pointer: drag pans, shift-drag selects, a click reports its point, wheel/pinch zoom ----------

    const pointers = new Map();
    let gesture = null;

    function local(e) {
      const rect = canvas.getBoundingClientRect();
      return [e.clientX - rect.left, e.clientY - rect.top];
    }

    function pinchDistance() {
      const [[ax, ay], [bx, by]] = [...pointers.values()];
      return Math.hypot(ax - bx, ay - by);
    }

    function hover(x, y) {
      const i = pointAt(x, y);
      if (i === m.hover) return;
      m.hover = i;
      canvas.style.cursor = i < 0 ? "" : "pointer";
      requestDraw();
      hooks.hover(i, x, y);
    }

    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, local(e));
      const [x, y] = local(e);
      gesture = pointers.size === 2 ? { kind: "pinch", dist: pinchDistance() }
        : { kind: e.shiftKey ? "select" : "pan", x0: x, y0: y, x, y, moved: false };
    });

    canvas.addEventListener("pointermove", (e) => {
      const [x, y] = local(e);
      if (pointers.has(e.pointerId)) pointers.set(e.pointerId, [x, y]);
      if (!gesture) { hover(x, y); return; }
      if (gesture.kind === "pinch" && pointers.size === 2) {
        const d = pinchDistance();
        const [[ax, ay], [bx, by]] = [...pointers.values()];
        zoomAt((ax + bx) / 2, (ay + by) / 2, d / (gesture.dist || d));
        gesture.dist = d;
        return;
      }
      gesture.moved = gesture.moved || Math.hypot(x - gesture.x0, y - gesture.y0) > 4;
      if (gesture.kind === "pan") panBy(x - gesture.x, y - gesture.y);
      else if (gesture.moved) {
        m.rect = [Math.min(gesture.x0, x), Math.min(gesture.y0, y), Math.max(gesture.x0, x), Math.max(gesture.y0, y)];
        requestDraw();
      }
      gesture.x = x; gesture.y = y;
    });

    function endGesture(e) {
      pointers.delete(e.pointerId);
      const g = gesture;
      gesture = pointers.size ? gesture : null;
      if (!g || g.kind === "pinch" || pointers.size) return;
      if (g.kind === "select" && m.rect) {
        const { s, ox, oy } = m.view;
        const [a, b, c, d] = m.rect;
        m.rect = null;
        hooks.region([(a - ox) / s, (b - oy) / s, (c - ox) / s, (d - oy) / s]);
      } else if (!g.moved && e.type === "pointerup") {
        const i = pointAt(g.x0, g.y0);
        if (i >= 0) hooks.click(i);
      }
      m.hover = -2;  // what is under the pointer, now that the map moved
      hover(...local(e));
    }
    canvas.addEventListener("pointerup", endGesture);
    canvas.addEventListener("pointercancel", endGesture);
    // chromium sends a pointerleave when a drag's pointer capture ends, with the pointer still on the map
    canvas.addEventListener("pointerleave", (e) => {
      const [x, y] = local(e);
      if (!gesture && !(x >= 0 && y >= 0 && x < m.width && y < m.height)) hover(-1e9, -1e9);
    });

    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [x, y] = local(e);
      zoomAt(x, y, Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)));
    }, { passive: false });

    canvas.addEventListener("keydown", (e) => {
      const step = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] }[e.key];
      if (step) { e.preventDefault(); panBy(...step); }
      if (e.key === "+" || e.key === "=") zoomAt(m.width / 2, m.height / 2, 1.5);
      if (e.key === "-") zoomAt(m.width / 2, m.height / 2, 1 / 1.5);
    });

    new ResizeObserver(resize).observe(canvas);
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { m.theme = null; requestDraw(); });

    return {
      setData, clear, fit, zoomAt, panBy, resize, requestDraw, pointAt,
      zoomBy: (factor) => zoomAt(m.width / 2, m.height / 2, factor),
      id: (i) => m.ids[i],
      cluster: (i) => m.cl[i],
      get view() { return { ...m.view }; },
      get count() { return m.n; },
      get drawMs() { return m.drawMs; },
      get thumbsLoaded() { return [...m.thumbs.values()].filter((t) => t.ok).length; },
      // a photo's place on the page (client pixels), or null
      screenOf(id) {
        const i = m.ids.indexOf(id);
        const rect = canvas.getBoundingClientRect();
        return i < 0 ? null : { x: rect.left + m.xs[i] * m.view.s + m.view.ox, y: rect.top + m.ys[i] * m.view.s + m.view.oy };
      },
    };
  }

  window.cliplab.mapView = mapView;
  window.cliplab.clusterColour = colour;
})();
