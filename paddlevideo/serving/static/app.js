// The web page: models, clip upload with top-5 bars (and a timeline), streams with live views, live events.
"use strict";
const token = new URLSearchParams(location.search).get("access_token");
const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token) : url;
const api = (url, opts = {}) => fetch(withToken(url), opts).then(async (r) => {
  const body = (r.headers.get("content-type") || "").includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error((body && body.error) || ("HTTP " + r.status));
  return body;
});
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
};

async function loadModels() {
  const { models } = await api("/v1/models");
  const body = $("models").querySelector("tbody");
  body.replaceChildren();
  for (const sel of [$("predict-model"), $("stream-model")]) sel.replaceChildren();
  for (const m of models) {
    body.append(el("tr", {}, el("td", {}, m.name), el("td", {}, m.task), el("td", {}, String(m.num_classes)),
      el("td", {}, m.backend), el("td", {}, m.precision), el("td", {}, m.stream_mode),
      el("td", {}, `${m.batch.max_batch} / ${m.batch.max_wait_ms} ms / queue ${m.batch.max_queue}`)));
    $("predict-model").append(el("option", { value: m.name }, m.name));
    $("stream-model").append(el("option", { value: m.name }, m.name));
  }
}

function bars(topk) {
  const box = el("div", { id: "top5" });
  for (const t of topk.slice(0, 5)) {
    box.append(el("div", { class: "bar" }, el("span", { class: "label" }, t.label),
      el("span", { class: "fill", style: `width:${Math.round(300 * t.score)}px` }),
      el("span", { class: "score" }, t.score.toFixed(3))));
  }
  return box;
}

function drawTimeline(tl) {
  const c = $("timeline-chart"), g = c.getContext("2d");
  c.hidden = false;
  g.clearRect(0, 0, c.width, c.height);
  const dur = tl.duration || 1, colours = {};
  for (const w of tl.windows) {
    const top = w.top_k[0];
    colours[top.label] = colours[top.label] || `hsl(${(Object.keys(colours).length * 67) % 360},60%,55%)`;
    g.globalAlpha = 0.3 + 0.7 * top.score;
    g.fillStyle = colours[top.label];
    g.fillRect(c.width * w.start / dur, 0, Math.max(1, c.width * (w.end - w.start) / dur), 40);
  }
  g.globalAlpha = 1; g.fillStyle = "#222"; g.font = "12px sans-serif";
  for (const s of tl.segments) g.fillText(s.label, c.width * s.start / dur + 2, 55);
}

$("predict-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("predict-file").files[0];
  if (!file) { $("predict-status").textContent = "choose a video file first"; return; }
  const fd = new FormData();
  fd.append("video", file);
  let url = `/v1/models/${encodeURIComponent($("predict-model").value)}/predict`;
  if ($("predict-timeline").checked) url += `?timeline=1&window=${$("predict-window").value}`;
  $("predict-status").textContent = "predicting " + file.name + " …";
  $("predict-result").replaceChildren();
  $("timeline-chart").hidden = true;
  const t0 = performance.now();
  try {
    const r = await api(url, { method: "POST", body: fd });
    $("predict-status").textContent = `${file.name}: ${((performance.now() - t0) / 1000).toFixed(2)} s`;
    if (r.top_k) $("predict-result").append(bars(r.top_k));
    else if (r.windows) { drawTimeline(r); $("predict-result").append(bars(r.windows[0].top_k)); }
    else if (r.keyframes) {
      for (const k of r.keyframes) $("predict-result").append(el("div", {}, `t=${k.time}s: ` + k.persons.map(
        (p) => p.actions.map((a) => `${a.label} ${a.score.toFixed(2)}`).join(", ") || "-").join(" | ")));
    }
    const top = $("predict-result").querySelector(".bar .label");
    if (top) top.id = "top1";
  } catch (e) {
    $("predict-status").textContent = "error: " + e.message;
    $("predict-status").className = "error";
  }
});

const views = {};
async function refreshStreams() {
  const { streams } = await api("/v1/streams");
  const box = $("streams");
  const seen = new Set();
  for (const s of streams) {
    seen.add(s.id);
    if (!views[s.id]) {
      const img = el("img", { src: withToken(`/v1/streams/${s.id}/mjpeg`), alt: "live view " + s.id, class: "live" });
      const info = el("div", { class: "info" });
      const del = el("button", {}, "delete");
      del.onclick = () => api(`/v1/streams/${s.id}`, { method: "DELETE" }).then(refreshStreams);
      views[s.id] = { node: el("div", { class: "stream", id: "stream-" + s.id }, img, info, del), info };
      box.append(views[s.id].node);
    }
    const tracks = s.tracks.map((t) => "#" + t.track_id).join(" ");
    views[s.id].info.textContent = `${s.id} · ${s.model} (${s.mode}) · ${s.state}${s.error ? ": " + s.error : ""} · ` +
      `${s.fps_out} fps · dropped ${s.dropped} · p99 ${s.latency_ms_p99 ?? "-"} ms · ` +
      (s.label !== null ? `label ${s.label}` : `tracks ${tracks || "-"}`);
  }
  for (const id of Object.keys(views)) if (!seen.has(id)) { views[id].node.remove(); delete views[id]; }
}

$("stream-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const source = $("stream-source").value.trim();
  try {
    const r = await api("/v1/streams", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ source: /^\d+$/.test(source) ? Number(source) : source, model: $("stream-model").value,
        every: Number($("stream-every").value) || 1 }) });
    $("stream-status").textContent = "stream " + r.id + " added";
    $("stream-status").className = "muted";
    refreshStreams();
  } catch (e) {
    $("stream-status").textContent = "error: " + e.message;
    $("stream-status").className = "error";
  }
});

function addEventRow(e) {
  const body = $("events").querySelector("tbody");
  const snap = e.has_snapshot ? el("img", { src: withToken(`/v1/events/${e.id}/snapshot.jpg`), alt: "snapshot" }) : "";
  body.prepend(el("tr", { class: "event", "data-id": String(e.id) }, el("td", {}, String(e.id)), el("td", {}, e.stream),
    el("td", {}, e.type), el("td", {}, e.track_id === null ? "frame" : "#" + e.track_id), el("td", {}, e.action),
    el("td", {}, e.score.toFixed(2)), el("td", {}, e.t.toFixed(1)), el("td", {}, snap)));
  while (body.children.length > 200) body.lastChild.remove();
}

async function startEvents() {
  const { events } = await api("/v1/events?order=desc&limit=50");
  for (const e of events.reverse()) addEventRow(e);
  const after = events.length ? events[events.length - 1].id : undefined;
  const src = new EventSource(withToken("/v1/events/stream" + (after !== undefined ? "?after=" + after : "")));
  for (const type of ["start", "update", "end"]) src.addEventListener(type, (m) => addEventRow(JSON.parse(m.data)));
}

async function health() {
  try { const r = await api("/readyz"); $("health").textContent = r.ready ? "ready" : "loading"; }
  catch (e) { $("health").textContent = "unreachable: " + e.message; }
}

loadModels().then(refreshStreams).catch((e) => { $("health").textContent = "error: " + e.message; });
startEvents().catch(() => {});
health();
setInterval(refreshStreams, 1000);
setInterval(health, 5000);
