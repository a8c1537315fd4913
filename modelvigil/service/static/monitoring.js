// modelvigil's live Monitoring page: polls monitoring/data every 2 s and draws SVG line charts
// on one shared time axis. Hand-written, no libraries, no build step, works offline.
"use strict";

const POLL_MS = 2000;
const KEY = "modelvigil.apiKey";
const COLORS = ["#2e6fd8", "#d8572e", "#2e9d5b", "#8a4fd8", "#c9a227", "#d82e8f", "#2ec4c9", "#666"];
const $ = (id) => document.getElementById(id);
let timer = null;
let custom = null; // [startMs, endMs] when a custom range is applied

function token() { return sessionStorage.getItem(KEY); }

function showLogin(message) {
  $("login").classList.add("shown");
  setStatus(message || "enter the API key", !!message);
}

function setStatus(text, bad) {
  $("status").textContent = text;
  $("status").className = bad ? "error" : "";
}

function range() {
  if (custom) return custom;
  const span = Number($("range").value) || 300000;
  const end = Date.now();
  return [end - span, end];
}

async function poll() {
  clearTimeout(timer);
  if (!token()) { showLogin(); return; }
  const [start, end] = range();
  const params = new URLSearchParams({ start_ms: String(Math.floor(start)), end_ms: String(Math.floor(end)) });
  if ($("deployment").value) params.set("deployment", $("deployment").value);
  try {
    const response = await fetch("monitoring/data?" + params, {
      headers: { Authorization: "Bearer " + token() },
      cache: "no-store",
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      showLogin("API key refused: " + (body.error || response.status));
      return;
    }
    if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
    $("login").classList.remove("shown");
    render(body);
    setStatus("updated " + new Date().toLocaleTimeString());
  } catch (err) {
    setStatus("update failed: " + err.message, true);
  }
  if (!custom && !document.hidden) timer = setTimeout(poll, POLL_MS);
}

function fmt(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits ?? 0 });
}

function pct(value) { return value === null || value === undefined ? "–" : (100 * value).toFixed(1) + "%"; }

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

function render(d) {
  const select = $("deployment");
  const known = Array.from(select.options).map((o) => o.value).join("\n");
  if (known !== d.deployments.join("\n")) {
    select.innerHTML = "";
    for (const crn of d.deployments) {
      const option = document.createElement("option");
      option.value = crn;
      option.textContent = d.deployment_names[crn] || crn.split("/").pop() || crn;
      option.title = crn;
      select.appendChild(option);
    }
  }
  select.value = d.deployment_crn;

  const t = d.totals;
  $("kpi-requests").textContent = fmt(t.requests);
  $("kpi-failed").textContent = fmt(t.failed);
  const p95 = lastValue(d.service.latency_p95_ms);
  $("kpi-p95").textContent = p95 === null ? "–" : fmt(p95, 1) + " ms";
  $("kpi-predictions").textContent = fmt(t.predictions);
  $("kpi-coverage").textContent = pct(t.label_coverage);
  const regression = d.task === "regression";
  $("kpi-task").textContent = d.task;
  $("kpi-accuracy-name").textContent = regression ? "MAE" : "Accuracy";
  $("kpi-accuracy").textContent = regression ? fmt(t.mae, 4) : pct(t.accuracy);
  $("kpi-estimated-box").classList.toggle("hidden", regression);
  $("kpi-estimated").textContent = pct(t.estimated_accuracy);

  const x = d.bucket_starts.map((b) => b + d.step_ms / 2);
  const axis = [d.start_ms, d.end_ms];
  const s = d.service;
  const m = d.model;
  chart("chart-rps", x, axis, [["requests/s", s.requests_per_second]]);
  chart("chart-requests", x, axis, [["requests", s.requests], ["stored predictions", m.calls]]);
  chart("chart-failed", x, axis, Object.entries(s.failed).map(([status, v]) => ["HTTP " + status, v]));
  chart("chart-latency", x, axis, [["p50", s.latency_p50_ms], ["p95", s.latency_p95_ms]]);
  chart("chart-size", x, axis, [["request", s.request_bytes_mean], ["response", s.response_bytes_mean]]);
  chart("chart-coverage", x, axis, [["label coverage", m.label_coverage]], [0, 1]);
  if (regression) {
    caption("caption-predictions", "Mean prediction", "of the numeric predictions");
    chart("chart-predictions", x, axis, [["mean prediction", m.mean_prediction]]);
    caption("caption-accuracy", "Error", "as ground truth arrives, in the model's units");
    chart("chart-accuracy", x, axis, [["MAE", m.mae], ["RMSE", m.rmse]]);
  } else {
    caption("caption-predictions", "Predictions per class", m.predictions["(other)"] ? "the 20 most predicted, the rest as (other)" : "");
    chart("chart-predictions", x, axis, Object.entries(m.predictions).map(([cls, v]) => [cls === "(other)" ? cls : "class " + cls, v]));
    caption("caption-accuracy", "Accuracy", "as ground truth arrives; estimated from confidence before it");
    chart("chart-accuracy", x, axis, [["accuracy", m.accuracy], ["estimated (no labels)", m.estimated_accuracy]], [0, 1]);
  }
  chart("chart-cpu", x, axis, [["CPU %", s.cpu_percent]]);
  chart("chart-memory", x, axis, [["resident MB", s.memory_rss_mb]]);
  $("note").textContent =
    "Buckets of " + d.step_ms / 1000 + " s. HTTP figures count calls since the service started (" +
    new Date(d.service_counting_since_ms).toLocaleString() + "), CPU and memory are sampled every second; " +
    "model figures come from the metrics store.";
}

function caption(id, title, detail) {
  const node = $(id);
  node.textContent = title + " ";
  if (!detail) return;
  const small = document.createElement("small");
  small.textContent = detail;
  node.appendChild(small);
}

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeLabel(ms, span) {
  const date = new Date(ms);
  return span > 2 * 86400000 ? date.toLocaleDateString() : date.toLocaleTimeString();
}

// One line chart: series = [[name, values]], values aligned with xs (null = no data).
function chart(id, xs, [x0, x1], series, fixedY) {
  const figure = $(id);
  const svg = figure.querySelector("svg");
  const width = svg.clientWidth || 420;
  const height = 150;
  const pad = { l: 44, r: 8, t: 6, b: 18 };
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const values = series.flatMap(([, v]) => v.filter((y) => y !== null));
  // From zero, unless the values go below it (a regression's mean prediction may).
  let [y0, y1] = fixedY || [values.length ? Math.min(0, ...values) : 0, values.length ? Math.max(...values) : 1];
  if (y1 <= y0) y1 = y0 + 1;
  const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  for (const frac of [0, 0.5, 1]) {
    const y = y0 + frac * (y1 - y0);
    svg.appendChild(el("line", { x1: pad.l, x2: width - pad.r, y1: sy(y), y2: sy(y), stroke: "#eef0f3" }));
    svg.appendChild(el("text", { x: pad.l - 4, y: sy(y) + 3, "text-anchor": "end" }, fmt(y, y1 - y0 < 5 ? 2 : 0)));
  }
  for (const frac of [0, 0.5, 1]) {
    const t = x0 + frac * (x1 - x0);
    const anchor = frac === 0 ? "start" : frac === 1 ? "end" : "middle";
    svg.appendChild(el("text", { x: sx(t), y: height - 4, "text-anchor": anchor }, timeLabel(t, x1 - x0)));
  }
  const legend = figure.querySelector(".legend");
  legend.replaceChildren();
  let points = 0;
  series.forEach(([name, v], k) => {
    const color = COLORS[k % COLORS.length];
    let d = "";
    let pen = "M";
    v.forEach((y, i) => {
      if (y === null) { pen = "M"; return; }
      d += `${pen}${sx(xs[i]).toFixed(1)},${sy(y).toFixed(1)} `;
      pen = "L";
      points++;
    });
    if (d) svg.appendChild(el("path", { d, fill: "none", stroke: color, "stroke-width": 1.6, "data-series": name }));
    // A point with no neighbour draws no line: mark it, or a single bucket of data stays invisible.
    v.forEach((y, i) => {
      if (y !== null && (v[i - 1] ?? null) === null && (v[i + 1] ?? null) === null) {
        svg.appendChild(el("circle", { cx: sx(xs[i]).toFixed(1), cy: sy(y).toFixed(1), r: 2.5, fill: color }));
      }
    });
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color; // set through the DOM: the page's CSP forbids style attributes
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(name));
    legend.appendChild(item);
  });
  svg.dataset.points = String(points);
  if (!series.length) legend.textContent = "none in this range";
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("token").value.trim());
  $("token").value = "";
  poll();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); clearTimeout(timer); showLogin(); });
$("range").addEventListener("change", () => {
  const isCustom = $("range").value === "custom";
  $("custom-range").classList.toggle("shown", isCustom);
  if (!isCustom) { custom = null; poll(); }
});
$("custom-apply").addEventListener("click", () => {
  const start = Date.parse($("custom-start").value);
  const end = Date.parse($("custom-end").value);
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) {
    setStatus("custom range: 'to' must be after 'from'", true);
    return;
  }
  custom = [start, end];
  poll();
});
$("deployment").addEventListener("change", poll);
document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
window.addEventListener("resize", poll);
poll();
