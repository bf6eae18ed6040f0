// fltiny dashboard: polls the run's JSON (/api/run, /api/device/N) and draws its charts as SVG.
// No library and no other host: everything the page needs is this file and dashboard.css.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg"; // an XML namespace name, never fetched
const POLL_MS = 1000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  return String(v);
}

function short(hash) { return hash ? hash.slice(0, 12) : "–"; }

// ---- charts ------------------------------------------------------------------------------

const H = 220, M = { l: 48, r: 12, t: 10, b: 44 };
let W = 640; // the chart being drawn's width in SVG units (text keeps its size as it widens)

function niceTicks(lo, hi, n = 5) {
  const span = hi - lo || 1;
  const step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) ticks.push(+v.toFixed(10));
  return ticks;
}

function frame(xs, yLo, yHi, yLabel) {
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const sx = (x) => M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r);
  const sy = (y) => H - M.b - ((y - yLo) / (yHi - yLo || 1)) * (H - M.t - M.b);
  const g = svg("g", {});
  for (const t of niceTicks(yLo, yHi)) {
    g.append(svg("line", { class: "gridline", x1: M.l, x2: W - M.r, y1: sy(t), y2: sy(t) }));
    g.append(svg("text", { x: M.l - 6, y: sy(t) + 4, "text-anchor": "end" }, fmt(t, 2)));
  }
  const xt = niceTicks(x0, x1, Math.min(10, x1 - x0)).filter(Number.isInteger);
  for (const t of xt) g.append(svg("text", { x: sx(t), y: H - M.b + 16, "text-anchor": "middle" }, t));
  g.append(svg("line", { class: "axis", x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
  g.append(svg("line", { class: "axis", x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
  g.append(svg("text", { x: (W + M.l) / 2, y: H - M.b + 30, "text-anchor": "middle" }, "round"));
  g.append(svg("text", { x: 12, y: (H - M.b + M.t) / 2, "text-anchor": "middle",
    transform: `rotate(-90 12 ${(H - M.b + M.t) / 2})` }, yLabel));
  return { g, sx, sy };
}

function legend(items) {
  const g = svg("g", { class: "legend" });
  let x = M.l;
  for (const [cls, name] of items) {
    g.append(svg("rect", { class: cls, x, y: H - 12, width: 10, height: 10 }));
    g.append(svg("text", { x: x + 14, y: H - 3 }, name));
    x += 22 + name.length * 6.5;
  }
  return g;
}

// series: [{key, name, points: [[x, y], ...]}] drawn as path.curve.curve-<key>
function lineChart(target, series, yLabel, fixed, width = 640) {
  W = width;
  const pts = series.flatMap((s) => s.points);
  const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", id: target.id + "-svg" });
  if (!pts.length) {
    box.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no rounds yet"));
    target.replaceChildren(box);
    return;
  }
  let lo = fixed ? fixed[0] : Math.min(...pts.map((p) => p[1]));
  let hi = fixed ? fixed[1] : Math.max(...pts.map((p) => p[1]));
  if (!fixed) { const pad = (hi - lo) * 0.1 || 0.05; lo -= pad; hi += pad; }
  const { g, sx, sy } = frame(pts.map((p) => p[0]), lo, hi, yLabel);
  box.append(g);
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`);
    box.append(svg("path", { class: `curve curve-${s.key}`, d: d.join(" "), "data-series": s.name,
      "data-points": s.points.length }));
    for (const p of s.points) {
      box.append(svg("circle", { class: `dot-${s.key}`, cx: sx(p[0]), cy: sy(p[1]), r: 2.5 },
        svg("title", {}, `${s.name}, round ${p[0]}: ${fmt(p[1])}`)));
    }
  }
  box.append(legend(series.map((s) => [`dot-${s.key}`, s.name])));
  target.replaceChildren(box);
}

// groups: [{x, values: {key: number}}]; stacked or side by side
function barChart(target, groups, keys, names, yLabel, stacked) {
  W = 640;
  const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  if (!groups.length) {
    box.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no rounds yet"));
    target.replaceChildren(box);
    return;
  }
  const totals = groups.map((g) => stacked ? keys.reduce((a, k) => a + (g.values[k] || 0), 0)
    : Math.max(...keys.map((k) => g.values[k] || 0)));
  const xs = groups.map((g) => g.x);
  const { g, sx, sy } = frame([Math.min(...xs) - 0.5, Math.max(...xs) + 0.5], 0,
    Math.max(1, ...totals) * 1.1, yLabel);
  box.append(g);
  const slot = (sx(1) - sx(0)) * 0.7;
  for (const grp of groups) {
    let base = 0;
    keys.forEach((k, i) => {
      const v = grp.values[k] || 0;
      const w = stacked ? slot : slot / keys.length;
      const x = sx(grp.x) - slot / 2 + (stacked ? 0 : i * w);
      const y0 = stacked ? base : 0;
      box.append(svg("rect", { class: `bar-${k}`, x, width: Math.max(1, w - 1), y: sy(y0 + v),
        height: Math.max(0, sy(y0) - sy(y0 + v)) }, svg("title", {}, `round ${grp.x}: ${names[i]} ${v}`)));
      if (stacked) base += v;
    });
  }
  box.append(legend(keys.map((k, i) => [`bar-${k}`, names[i]])));
  target.replaceChildren(box);
}

function heatmap(target, devices, rounds) {
  W = 1000;
  const cols = rounds.filter((r) => r > 0);
  const cw = Math.max(8, Math.min(28, (W - 70) / Math.max(1, cols.length))), ch = 16;
  const h = 24 + ch * devices.length;
  const box = svg("svg", { viewBox: `0 0 ${W} ${Math.max(h, 40)}`, role: "img" });
  cols.forEach((r, j) => {
    if (cols.length <= 30 || r % 5 === 0) {
      box.append(svg("text", { x: 64 + j * cw + cw / 2, y: 12, "text-anchor": "middle" }, r));
    }
  });
  devices.forEach((d, i) => {
    box.append(svg("text", { x: 56, y: 20 + i * ch + ch - 4, "text-anchor": "end" }, `device ${d.device_id}`));
    cols.forEach((r, j) => {
      const a = d.anomaly[String(r)];
      const level = a === undefined ? null : Math.min(1, a / 6);
      const fill = level === null ? "#eef0f3"
        : `rgb(${Math.round(240 - 60 * level)},${Math.round(240 - 170 * level)},${Math.round(240 - 190 * level)})`;
      box.append(svg("rect", { x: 64 + j * cw, y: 20 + i * ch, width: cw - 1, height: ch - 1, fill },
        svg("title", {}, `device ${d.device_id}, round ${r}: ${a === undefined ? "no update" : fmt(a, 2)}`)));
    });
  });
  target.replaceChildren(box);
}

// ---- pages -------------------------------------------------------------------------------

function card(k, v) { return el("div", { class: "card" }, el("div", { class: "v" }, v), el("div", { class: "k" }, k)); }

function setStatus(run) {
  const status = document.getElementById("status");
  const age = run.last_write ? run.now - run.last_write : null;
  const stalled = run.status === "running" && age !== null && age > 300;
  status.textContent = stalled ? "stalled" : run.status;
  status.className = `badge ${stalled ? "stalled" : run.status}`;
  document.getElementById("current-round").textContent =
    `round ${run.current_round} of ${run.rounds_target || "?"}`;
  const lw = document.getElementById("last-write");
  if (lw && age !== null) lw.textContent = `(last round ${Math.max(0, age).toFixed(0)} s ago)`;
}

async function queue(action, target) {
  const out = document.getElementById("ctl-result");
  const resp = await fetch("/api/ctl", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ action, target }) });
  const body = await resp.json();
  out.textContent = resp.ok ? `queued ${body.queued}: applied at the next round` : `refused: ${body.error}`;
}

function renderRun(v) {
  const run = v.run, metric = run.metric;
  document.getElementById("run-dir").textContent = run.dir;
  setStatus(run);
  const last = v.rounds[v.rounds.length - 1] || {};
  const trained = v.rounds.filter((r) => r.round > 0);
  const lastT = trained[trained.length - 1] || {};
  document.getElementById("cards").replaceChildren(
    card("current round", `${run.current_round} / ${run.rounds_target || "?"}`),
    card(`held-out ${metric}`, fmt(last.heldout)),
    card(`personal ${metric} (mean)`, fmt(lastT.personal)),
    card("devices this round", fmt(lastT.participants)),
    card("rejected this round", fmt(lastT.rejected)),
    card("bytes up / down", lastT.bytes_up === undefined ? "–" : `${lastT.bytes_up} / ${lastT.bytes_down}`),
    card("strategy", run.strategy || "–"),
    ...(lastT.epsilon === null || lastT.epsilon === undefined ? [] : [card("privacy ε", fmt(lastT.epsilon, 3))]),
    card("model", run.model || "–"));
  lineChart(document.getElementById("accuracy-chart"), [
    { key: "heldout", name: `held-out ${metric}`, points: v.rounds.filter((r) => r.heldout !== null).map((r) => [r.round, r.heldout]) },
    { key: "personal", name: `personal ${metric} (mean)`, points: trained.filter((r) => r.personal !== null).map((r) => [r.round, r.personal]) },
    { key: "personal-worst", name: "personal, worst device", points: trained.filter((r) => r.personal_worst !== null).map((r) => [r.round, r.personal_worst]) },
  ], metric, null, 1100);
  barChart(document.getElementById("participation-chart"),
    trained.map((r) => ({ x: r.round, values: { accepted: r.participants, rejected: r.rejected } })),
    ["accepted", "rejected"], ["accepted", "rejected"], "updates", true);
  barChart(document.getElementById("bytes-chart"),
    trained.map((r) => ({ x: r.round, values: { up: r.bytes_up, down: r.bytes_down } })),
    ["up", "down"], ["bytes up", "bytes down"], "bytes", false);
  document.querySelector("#rejected tbody").replaceChildren(...(v.rejected.length ? v.rejected.slice().reverse().map((r) =>
    el("tr", { class: "bad" }, el("td", { class: "num" }, r.round),
      el("td", {}, el("a", { href: `/device/${r.device_id}` }, `device ${r.device_id}`)),
      el("td", { class: "reason" }, r.reason))) : [el("tr", {}, el("td", { colspan: 3 }, "none"))]));
  heatmap(document.getElementById("anomaly-chart"), v.devices, v.rounds.map((r) => r.round));
  document.querySelector("#devices tbody").replaceChildren(...v.devices.map((d) =>
    el("tr", { class: d.health === "ok" ? "" : "bad" },
      el("td", {}, el("a", { href: `/device/${d.device_id}` }, `device ${d.device_id}`)),
      el("td", {}, d.health), el("td", { class: "num" }, fmt(d.last_seen_round)),
      el("td", { class: "num" }, d.accepted), el("td", { class: "num" }, d.rejected),
      el("td", { class: "num" }, d.failed), el("td", { class: "num" }, fmt(d.last_anomaly, 2)),
      el("td", { class: "num" }, fmt(d.reputation, 2)), el("td", { class: "mono" }, short(d.model_sha256)),
      el("td", {}, d.board || "simulated"))));
  document.getElementById("controls").replaceChildren(...(v.controls.length ? v.controls.map((c) =>
    el("li", {}, `${c.text}: ${c.applied_in_version === null ? "queued" : "applied in version " + c.applied_in_version}`))
    : [el("li", { class: "muted" }, "none")]));
  const audit = document.getElementById("audit");
  audit.textContent = v.audit.line;
  audit.className = v.audit.ok ? "" : "bad";
  const s = run.settings || {};
  const rows = [["strategy", run.strategy], ["dataset", run.dataset], ["partition", run.partition],
    ["fraction", s.fraction], ["min fit", s.min_fit], ["update norm bound (x model)", s.max_update_ratio],
    ["anomaly threshold", s.anomaly_threshold], ["reputation threshold", s.reputation_threshold],
    ["privacy", run.privacy]];
  document.querySelector("#settings tbody").replaceChildren(...rows.map(([k, val]) =>
    el("tr", {}, el("th", {}, k), el("td", {}, fmt(val)))));
  return run.finished;
}

function renderDevice(v) {
  const d = v.device, metric = v.metric;
  document.getElementById("device-id").textContent = d.device_id;
  setStatus(v.run);
  document.getElementById("cards").replaceChildren(
    card("health", d.health), card("last seen", `round ${fmt(d.last_seen_round)}`),
    card("accepted / rejected / failed", `${d.accepted} / ${d.rejected} / ${d.failed}`),
    card("reputation", fmt(d.reputation, 2)), card("last anomaly", fmt(d.last_anomaly, 2)),
    card("model sent", short(d.model_sha256)), card("board", d.board || "simulated"));
  const actions = document.getElementById("actions");
  if (!actions.childElementCount) {
    for (const a of ["quarantine", "clear", "disable", "enable"]) {
      const b = el("button", { type: "button", "data-action": a }, a);
      b.addEventListener("click", () => queue(a, d.device_id));
      actions.append(b);
    }
  }
  const h = v.history;
  lineChart(document.getElementById("personal-chart"), [
    { key: "personal", name: `personal ${metric}`, points: h.filter((r) => r.personal !== null && r.personal !== undefined).map((r) => [r.round, r.personal]) },
  ], metric);
  lineChart(document.getElementById("score-chart"), [
    { key: "anomaly", name: "anomaly score", points: h.filter((r) => r.anomaly !== null).map((r) => [r.round, r.anomaly]) },
    { key: "reputation", name: "reputation", points: h.filter((r) => r.reputation !== null).map((r) => [r.round, r.reputation]) },
  ], "score");
  document.querySelector("#history tbody").replaceChildren(...h.slice().reverse().map((r) =>
    el("tr", { class: r.accepted ? "" : "bad" }, el("td", { class: "num" }, r.round),
      el("td", {}, r.accepted ? "accepted" : "rejected"), el("td", { class: "reason" }, r.reason),
      el("td", { class: "num" }, r.examples), el("td", { class: "num" }, fmt(r.loss)),
      el("td", { class: "num" }, fmt(r.norm)), el("td", { class: "num" }, fmt(r.anomaly, 2)),
      el("td", { class: "num" }, fmt(r.reputation, 2)), el("td", { class: "num" }, fmt(r.personal)),
      el("td", { class: "num" }, r.bytes_up), el("td", { class: "num" }, r.bytes_down),
      el("td", { class: "mono" }, short(r.model_sha256)), el("td", { class: "mono" }, short(r.payload_sha256)))));
  return v.run.finished;
}

async function poll(url, render) {
  let finished = false;
  try {
    const resp = await fetch(url, { cache: "no-store" });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || resp.statusText);
    finished = render(body);
    document.body.dataset.loaded = "yes";
  } catch (err) {
    const status = document.getElementById("status");
    status.textContent = `error: ${err.message}`;
    status.className = "badge error";
  }
  setTimeout(() => poll(url, render), finished ? 5 * POLL_MS : POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "device") {
    const id = location.pathname.split("/").filter(Boolean).pop();
    poll(`/api/device/${id}`, renderDevice);
  } else {
    document.getElementById("rollback-form").addEventListener("submit", (e) => {
      e.preventDefault();
      queue("rollback", parseInt(document.getElementById("rollback-round").value, 10));
    });
    poll("/api/run", renderRun);
  }
});
