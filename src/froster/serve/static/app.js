// froster serve: the page. Plain JavaScript, no framework, no build step. Every number it
// shows comes from the server (the library's calls); this file only draws them.
"use strict";

const $ = (id) => document.getElementById(id);
// The colours of froster's timeline chart (froster.inference.render.PALETTE), by label index.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#bcbd22", "#17becf", "#7f7f7f"];
const NO_ACTION = "#c8c8c8";
const colour = (index) => (index == null || index < 0 ? NO_ACTION : PALETTE[index % PALETTE.length]);
const state = { file: null, url: null, names: [], timeline: null, model: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
  return node;
}
function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}
function setStatus(text, error = false) {
  const node = $("status");
  node.textContent = text;
  node.classList.toggle("error", error);
}
function fmtTime(t) {
  const m = Math.floor(t / 60), s = t - 60 * m;
  return `${m}:${s.toFixed(1).padStart(4, "0")}`;
}
const pct = (p) => `${(100 * p).toFixed(1)}%`;

async function failure(response) {
  let detail = `${response.status} ${response.statusText}`;
  try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
  return new Error(detail);
}
async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw await failure(response);
  return response.json();
}
async function post(url, body) {
  const response = await fetch(url, { method: "POST", body });
  if (!response.ok) throw await failure(response);
  return response;
}
function videoForm(extra = {}) {
  if (!state.file) throw new Error("pick a video first");
  const labels = $("labels").value.trim();
  if (!labels) throw new Error("type some labels first (one per line)");
  const form = new FormData();
  form.append("video", state.file, state.file.name);
  form.append("labels", labels);
  for (const [key, value] of Object.entries(extra)) form.append(key, value);
  return form;
}
async function busy(button, text, work) {
  button.disabled = true;
  setStatus(text);
  const start = performance.now();
  try {
    await work();
    setStatus(`done in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    button.disabled = false;
  }
}

// -- tabs and model ---------------------------------------------------------------------
function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of document.querySelectorAll(".panel")) panel.classList.toggle("active", panel.id === `panel-${name}`);
  if (name === "try" && state.timeline) drawChart();
}
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));

async function loadModel() {
  try {
    const model = state.model = await getJSON("/api/model");
    const v = model.view_settings;
    const what = model.checkpoint ? model.checkpoint.replace(/\/+$/, "").split("/").slice(-2).join("/")
      : model.model || model.identity.slice(0, 24);
    $("model-info").textContent = `${what} · ${v.num_views} views × ${v.num_frames} frames · ` +
      `${v.size}px · ${model.templates} prompts · ${model.device}`;
    $("model-info").title = model.identity;
    $("tab-search").disabled = !model.library;
    $("tab-search").title = model.library ? "" : "start froster serve with --library DIR";
    $("tab-inspect").disabled = !model.run;
    $("tab-inspect").title = model.run ? "" : "start froster serve with --run RUN_DIR";
    if (model.run) loadRun();
  } catch (err) {
    $("model-info").textContent = `model: ${err.message}`;
  }
}

// -- the video ------------------------------------------------------------------------
function setVideo(file) {
  if (!file) return;
  state.file = file;
  state.timeline = null;
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(file);
  $("video-name").textContent = `${file.name} (${(file.size / 1e6).toFixed(1)} MB)`;
  const player = $("player");
  player.src = state.url;
  $("no-video").hidden = true;
  for (const id of ["timeline", "prediction-card", "frames-card", "explain-card"]) $(id).hidden = true;
  setStatus("");
}
$("video-file").addEventListener("change", (e) => setVideo(e.target.files[0]));
$("player").addEventListener("error", () => {
  if (!state.file) return;
  $("no-video").hidden = false;
  $("no-video").textContent = `This browser cannot play ${state.file.name}; the model still reads it ` +
    "(classify, timeline and attention work; see the frames the model saw).";
});
const drop = $("drop");
for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); setVideo(e.dataTransfer.files[0]); });

function countLabels() {
  const n = $("labels").value.split("\n").filter((l) => l.trim()).length;
  $("label-count").textContent = n ? `(${n})` : "";
}
$("labels").addEventListener("input", countLabels);
$("label-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("label_file", file, file.name);
  try {
    const { labels } = await (await post("/api/labels", form)).json();
    $("labels").value = labels.join("\n");
    countLabels();
    setStatus(`${labels.length} labels from ${file.name}`);
  } catch (err) {
    setStatus(err.message, true);
  }
  e.target.value = "";
});

function setNames(names) {
  state.names = names;
  const select = $("explain-label"), keep = select.value;
  select.replaceChildren(el("option", { value: "" }, "top label"), ...names.map((n) => el("option", { value: n }, n)));
  if (names.includes(keep)) select.value = keep;
}

// -- classify --------------------------------------------------------------------------
$("classify").addEventListener("click", () => busy($("classify"), "classifying…", async () => {
  const form = videoForm({ top_k: $("top-k").value || "5", frames: "1" });
  const result = await (await post("/api/classify", form)).json();
  const bars = $("bars");
  bars.replaceChildren(...result.predictions.map((p) => el("li", { class: "bar" },
    el("span", { class: "name", title: p.label }, p.label),
    el("span", { class: "track" }, el("span", { class: "fill", style: `width:${(100 * p.probability).toFixed(2)}%` })),
    el("span", { class: "value" }, p.probability.toFixed(4)))));
  $("prediction-note").textContent = `of ${result.labels} labels · softmax over the labels of ` +
    `${result.views} views' summed logits`;
  $("prediction-card").hidden = false;
  if (result.frames) {
    $("frames").src = result.frames;
    $("frames-note").textContent = `${result.views} views × ${result.frames_per_view} frames, ` +
      "resized and centre-cropped" + (result.fallback ? ` · sampling fallback: ${result.fallback}` : "");
    $("frames-card").hidden = false;
  }
  setNames(result.predictions.map((p) => p.label));  // the labels to explain: best first
}));

// -- timeline --------------------------------------------------------------------------
$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
  rescoreSoon();
});
$("smooth").addEventListener("change", rescoreSoon);

$("run-timeline").addEventListener("click", () => busy($("run-timeline"), "running the timeline…", async () => {
  const form = videoForm({ stride: $("stride").value || "1", threshold: $("threshold").value,
                           smooth: $("smooth").value || "1", top_k: "0" });
  const response = await post("/api/timeline", form);
  const tl = state.timeline = { labels: $("labels").value.trim(), names: [], windows: [], segments: [],
                                duration: null, end: null, threshold: Number($("threshold").value) };
  $("timeline").hidden = false;
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let buffer = "", pending = false;
  const redraw = () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; drawChart(); }); } };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (!line) continue;
      const record = JSON.parse(line);
      if (record.type === "timeline") {
        tl.names = record.labels;
        tl.duration = record.duration;
        tl.window = record.window;
        setNames(record.labels);
      } else if (record.type === "window") {
        tl.windows.push(record);
        setStatus(`timeline: ${fmtTime(record.end)} of ${tl.duration ? fmtTime(tl.duration) : "?"}`);
      } else if (record.type === "segment") {
        tl.segments.push(record);
      } else if (record.type === "end") {
        tl.end = record;
      } else if (record.type === "error") {
        throw new Error(record.error);
      }
      redraw();
    }
  }
  drawChart();
  if (tl.end && tl.end.error) throw new Error(`the video ended early: ${tl.end.error}`);
}));

let rescoreTimer = null;
function rescoreSoon() {
  clearTimeout(rescoreTimer);
  rescoreTimer = setTimeout(rescore, 150);
}
async function rescore() {
  const tl = state.timeline;
  if (!tl || !tl.end) return;
  const body = JSON.stringify({
    labels: tl.labels.split("\n").map((l) => l.trim()).filter(Boolean),
    windows: tl.windows.map((w) => ({ start: w.start, end: w.end, logits: w.logits })),
    threshold: Number($("threshold").value), smooth: Number($("smooth").value) || 1,
    end_time: tl.end.end_time });
  try {
    const result = await (await fetch("/api/timeline/rescore", { method: "POST", body,
      headers: { "Content-Type": "application/json" } })).json();
    if (!result.windows) throw new Error(result.detail || "rescore failed");
    result.windows.forEach((w, i) => Object.assign(tl.windows[i], { label: w.label, probability: w.probability, scores: w.scores }));
    tl.segments = result.segments;
    tl.threshold = result.threshold;
    drawChart();
    setStatus(`threshold ${result.threshold.toFixed(2)}, smoothing ${result.smooth}: ${result.segments.length} segments`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

function shownLabels(tl, most = 8) {
  const best = tl.names.map((_, i) => Math.max(0, ...tl.windows.map((w) => w.scores[i])));
  return best.map((b, i) => [b, i]).sort((a, b) => b[0] - a[0]).slice(0, most).map(([, i]) => i).sort((a, b) => a - b);
}

function drawChart() {
  const tl = state.timeline, chart = $("chart");
  if (!tl || !tl.names.length) return;
  const W = Math.max(300, chart.clientWidth || 900), H = 230;
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const left = 38, right = 12, top = 10, plotH = 150, bandY = top + plotH + 10, bandH = 22;
  const last = tl.windows.length ? tl.windows[tl.windows.length - 1].end : 0;
  const span = Math.max(tl.end && tl.end.end_time ? tl.end.end_time : 0, last, tl.duration || 0, 1e-3);
  const x = (t) => left + (W - left - right) * (t / span);
  const y = (p) => top + plotH * (1 - p);
  const nodes = [];
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    nodes.push(svg("line", { class: "grid", x1: left, x2: W - right, y1: y(p), y2: y(p) }));
    const label = svg("text", { class: "tick", x: left - 6, y: y(p) + 3.5, "text-anchor": "end" });
    label.textContent = p.toFixed(2);
    nodes.push(label);
  }
  const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => span / s <= 10) || 7200;
  for (let t = 0; t <= span + 1e-9; t += step) {
    const label = svg("text", { class: "tick", x: x(t), y: H - 4, "text-anchor": "middle" });
    label.textContent = fmtTime(t);
    nodes.push(label, svg("line", { class: "axis", x1: x(t), x2: x(t), y1: bandY + bandH, y2: bandY + bandH + 4 }));
  }
  nodes.push(svg("line", { class: "axis", x1: left, x2: W - right, y1: y(0), y2: y(0) }));
  const shown = shownLabels(tl);
  for (const i of shown) {
    const points = tl.windows.map((w) => `${x((w.start + w.end) / 2).toFixed(1)},${y(w.scores[i]).toFixed(1)}`);
    if (points.length === 1) points.push(points[0]);
    nodes.push(svg("polyline", { class: "score", points: points.join(" "), stroke: colour(i) }));
  }
  if (tl.threshold > 0) nodes.push(svg("line", { class: "threshold", x1: left, x2: W - right, y1: y(tl.threshold), y2: y(tl.threshold) }));
  tl.segments.forEach((s, k) => {
    const index = s.label == null ? -1 : tl.names.indexOf(s.label);
    const rect = svg("rect", { class: "segment", x: x(s.start), y: bandY, width: Math.max(1, x(s.end) - x(s.start)),
                               height: bandH, fill: colour(index), "data-start": s.start, "data-index": k });
    const title = svg("title");
    title.textContent = `${s.label ?? "no action"}: ${fmtTime(s.start)}–${fmtTime(s.end)} (score ${s.probability.toFixed(2)})`;
    rect.append(title);
    rect.addEventListener("click", (e) => { e.stopPropagation(); seek(s.start); });
    nodes.push(rect);
  });
  const head = svg("line", { class: "playhead", id: "playhead", y1: top, y2: bandY + bandH, x1: x(0), x2: x(0) });
  nodes.push(head);
  chart.replaceChildren(...nodes);
  chart.onclick = (e) => {
    const box = chart.getBoundingClientRect();
    const t = ((e.clientX - box.left) * (W / box.width) - left) / (W - left - right) * span;
    seek(Math.min(span, Math.max(0, t)));
  };
  state.chartX = x;
  $("legend").replaceChildren(...shown.map((i) => el("span", { style: `--swatch:${colour(i)}` }, tl.names[i])),
    el("span", { style: `--swatch:${NO_ACTION}` }, "no action"));
  const rows = tl.segments.map((s, k) => el("tr", { "data-start": s.start, "data-index": k, onclick: () => seek(s.start) },
    el("td", {}, fmtTime(s.start)), el("td", {}, fmtTime(s.end)),
    el("td", { class: "label" }, s.label ?? "(no action)"), el("td", {}, s.probability.toFixed(2))));
  $("segment-table").tBodies[0].replaceChildren(...rows);
  movePlayhead();
}

function seek(t) {
  const player = $("player");
  if (player.src) player.currentTime = t;
  state.seekedTo = t;
  movePlayhead(t);
}
function movePlayhead(t) {
  const head = $("playhead"), tl = state.timeline;
  if (!head || !state.chartX || !tl) return;
  const now = t ?? $("player").currentTime ?? 0;
  head.setAttribute("x1", state.chartX(now));
  head.setAttribute("x2", state.chartX(now));
  for (const row of $("segment-table").tBodies[0].rows) {
    const s = tl.segments[Number(row.dataset.index)];
    row.classList.toggle("current", s && now >= s.start && now < s.end);
  }
}
$("player").addEventListener("timeupdate", () => movePlayhead());
window.addEventListener("resize", () => state.timeline && drawChart());

// -- explain ---------------------------------------------------------------------------
$("run-explain").addEventListener("click", () => busy($("run-explain"), "computing attention maps…", async () => {
  const extra = { method: $("explain-method").value };
  if ($("explain-label").value) extra.label = $("explain-label").value;
  const response = await post("/api/explain", videoForm(extra));
  const blob = await response.blob();
  const image = $("explain-image");
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(blob);
  const label = decodeURIComponent(response.headers.get("X-Label") || "");
  $("explain-note").textContent = `'${label}', p = ${Number(response.headers.get("X-Probability")).toFixed(3)} ` +
    `(view ${response.headers.get("X-View")}, ${response.headers.get("X-Method")})`;
  $("explain-card").hidden = false;
}));

// -- search ----------------------------------------------------------------------------
async function runSearch() {
  const q = $("query").value.trim();
  if (!q) return;
  $("search-note").textContent = "searching…";
  try {
    const result = await getJSON(`/api/search?q=${encodeURIComponent(q)}&top_k=48`);
    $("search-note").textContent = `${result.results.length} of ${result.index.videos} videos, ` +
      "by cosine similarity to the query" + (result.index.unreadable ? ` · ${result.index.unreadable} unreadable` : "");
    $("hits").replaceChildren(...result.results.map((hit) => el("button", { class: "hit", title: hit.video,
      onclick: () => play("search", hit.url, `${hit.rank}. ${hit.video}  (${hit.score.toFixed(3)})`) },
      el("img", { src: hit.thumbnail, alt: hit.video, loading: "lazy" }),
      el("div", { class: "meta" }, el("span", { class: "path" }, `${hit.rank}. ${hit.video}`),
         el("span", { class: "score" }, hit.score.toFixed(3))))));
  } catch (err) {
    $("search-note").textContent = err.message;
  }
}
$("run-search").addEventListener("click", runSearch);
$("query").addEventListener("keydown", (e) => { if (e.key === "Enter") runSearch(); });

function play(where, url, caption) {
  const player = $(`${where}-player`);
  player.src = url;
  $(`${where}-caption`).textContent = caption;
  $(`${where}-player-card`).hidden = false;
  player.play().catch(() => { /* the browser may refuse autoplay; the controls are there */ });
}

// -- inspect ---------------------------------------------------------------------------
async function loadRun() {
  try {
    const run = await getJSON("/api/run");
    $("run-note").textContent = run.folder;
    const select = $("evaluation");
    select.replaceChildren(...run.evaluations.map((e) => el("option", { value: e.name },
      `${e.name} — top-1 ${e.top1 == null ? "?" : e.top1.toFixed(2)}`)));
    select.onchange = () => loadEvaluation(select.value);
    if (run.evaluations.length) loadEvaluation(run.evaluations[0].name);
  } catch (err) {
    $("run-note").textContent = err.message;
  }
}

async function loadEvaluation(name) {
  const d = await getJSON(`/api/run/evaluation?name=${encodeURIComponent(name)}`);
  const s = d.summary, num = (v) => (v == null ? "–" : Number(v).toFixed(2));
  const stat = (value, label) => el("div", { class: "stat" }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  $("summary").replaceChildren(stat(num(s.top1), "top-1 (%)"), stat(num(s.top5), "top-5 (%)"),
    stat(num(s.mean_class_accuracy), "mean class accuracy (%)"), stat(`${s.evaluated}/${s.total}`, "videos evaluated"),
    stat(String(s.failed ?? 0), "could not be read"));
  const classes = [...d.per_class].sort((a, b) => (a.accuracy ?? 101) - (b.accuracy ?? 101));
  $("per-class").replaceChildren(...classes.map((c) => el("li", { class: "bar" },
    el("span", { class: "name", title: c.label }, c.label),
    el("span", { class: "track" }, el("span", { class: `fill${(c.accuracy ?? 100) < 50 ? " low" : ""}`,
      style: `width:${c.accuracy ?? 0}%` })),
    el("span", { class: "value" }, c.accuracy == null ? "no video" : `${c.accuracy.toFixed(1)}%`))));
  $("confused").tBodies[0].replaceChildren(...(d.confused.length ? d.confused.map((c) => el("tr", {},
    el("td", {}, c.true), el("td", {}, c.predicted), el("td", { class: "num" }, String(c.videos))))
    : [el("tr", {}, el("td", { colspan: 3, class: "muted" }, "no confusions"))]));
  $("failed-count").textContent = `(${d.failed_videos.length})`;
  $("failed").replaceChildren(...(d.failed_videos.length ? d.failed_videos.map((f) => el("li", {}, f))
    : [el("li", { class: "muted" }, "none")]));
  $("wrong-folder").textContent = commonFolder(d.misclassified.map((w) => w.video));
  $("wrong-count").textContent = d.predictions ? `(${d.misclassified_total}${d.misclassified_total > d.misclassified.length ? `, first ${d.misclassified.length}` : ""})`
    : "(this evaluation has no predictions.jsonl: evaluate again with this froster to list them)";
  const common = commonFolder(d.misclassified.map((w) => w.video));
  $("wrong").tBodies[0].replaceChildren(...d.misclassified.map((w) => el("tr", {},
    el("td", {}, el("button", { class: "play", title: "play",
      onclick: () => play("inspect", `/api/run/video?name=${encodeURIComponent(name)}&index=${w.index}`,
                          `${w.video} — true: ${w.label}, predicted: ${w.top5[0].label}`) }, "▶")),
    el("td", { class: "video", title: w.video }, w.video.slice(common.length)), el("td", {}, w.label),
    el("td", {}, ...w.top5.map((t) => el("span", { class: `chip${t.label === w.label ? " true" : ""}` },
      `${t.label} ${pct(t.probability)}`))))));
}

function commonFolder(paths) {
  // The folder all the paths share (shown once above the table, not on every row).
  if (!paths.length) return "";
  let prefix = paths[0].slice(0, paths[0].lastIndexOf("/") + 1);
  for (const p of paths) while (prefix && !p.startsWith(prefix)) prefix = prefix.slice(0, prefix.slice(0, -1).lastIndexOf("/") + 1);
  return prefix;
}

loadModel();
countLabels();
