// maru trace viewer: plain JavaScript, no framework, nothing loaded from elsewhere.
// Every value from a trace is put in the page with textContent, never parsed as HTML.
"use strict";

const PAGE = 50;
const state = { offset: 0, total: 0, traceId: null, runs: [], runId: null };
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ formatting
function pad(n) { return String(n).padStart(2, "0"); }

function fmtTime(seconds) {
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtLatency(seconds) {
  if (seconds == null) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(2)} s`;
  const m = Math.floor(seconds / 60);
  return `${m}m ${pad(Math.round(seconds - m * 60))}s`;
}

function tokenTotal(run) {
  if (run.input_tokens == null && run.output_tokens == null) return null;
  return (run.input_tokens || 0) + (run.output_tokens || 0);
}

function fmtTokens(run) {
  const total = tokenTotal(run);
  return total == null ? "—" : total.toLocaleString("en-US");
}

function tokenTitle(run) {
  if (tokenTotal(run) == null) return "";
  let text = `input ${(run.input_tokens || 0).toLocaleString("en-US")} · output ${(run.output_tokens || 0).toLocaleString("en-US")}`;
  if (run.cached_tokens) text += ` · cached ${run.cached_tokens.toLocaleString("en-US")}`;
  return text;
}

function fmtCost(cost) {
  if (cost == null) return "—";
  if (cost === 0) return "$0";
  return cost < 0.01 ? `$${cost.toFixed(6)}` : `$${cost.toFixed(4)}`;
}

function pretty(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ data
async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail;
    throw new Error(typeof detail === "string" ? detail : `${response.status} ${response.statusText}`);
  }
  return body;
}

function filterParams() {
  const params = new URLSearchParams();
  const name = $("f-name").value.trim();
  const tag = $("f-tag").value.trim();
  if (name) params.set("name", name);
  if (tag) params.set("tag", tag);
  const range = $("f-range").value;
  if (range === "custom") {
    // datetime-local is the browser's local time: send epoch seconds so the server agrees.
    const since = $("f-since").value;
    const until = $("f-until").value;
    if (since) params.set("since", String(new Date(since).getTime() / 1000));
    if (until) params.set("until", String(new Date(until).getTime() / 1000));
  } else if (range) {
    params.set("since", range);
  }
  if ($("f-errors").checked) params.set("errors", "true");
  return params;
}

function showMessage(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

async function loadTraces() {
  const params = filterParams();
  params.set("limit", String(PAGE));
  params.set("offset", String(state.offset));
  let data;
  try {
    data = await getJSON(`/api/traces?${params}`);
  } catch (error) {
    showMessage(error.message);
    return;
  }
  showMessage("");
  state.total = data.total;
  renderTraces(data.traces);
}

// ------------------------------------------------------------------ the list
function statusCell(trace) {
  const cell = el("td", "status");
  if (trace.status === "error") {
    cell.append(el("span", "badge error", "error"));
  } else {
    cell.append(el("span", "badge ok", "ok"));
    if (trace.error_count) {
      const n = trace.error_count;
      cell.append(el("span", "warn", ` ${n} failed run${n === 1 ? "" : "s"}`));
    }
  }
  return cell;
}

function renderTraces(traces) {
  const body = $("traces").querySelector("tbody");
  body.replaceChildren();
  for (const trace of traces) {
    const row = el("tr", "trace-row");
    row.dataset.traceId = trace.trace_id;
    row.tabIndex = 0;
    if (trace.trace_id === state.traceId) row.classList.add("selected");
    if (trace.status === "error") row.classList.add("failed");
    row.append(el("td", "started", fmtTime(trace.start_time)));
    const name = el("td", "name", trace.name);
    name.title = `trace ${trace.trace_id} · ${trace.run_count} run${trace.run_count === 1 ? "" : "s"}`;
    row.append(name);
    row.append(el("td", "num latency", fmtLatency(trace.latency)));
    const tokens = el("td", "num tokens", fmtTokens(trace));
    tokens.title = tokenTitle(trace);
    row.append(tokens);
    row.append(el("td", "num cost", fmtCost(trace.cost)));
    row.append(statusCell(trace));
    row.addEventListener("click", () => openTrace(trace.trace_id));
    row.addEventListener("keydown", (event) => { if (event.key === "Enter") openTrace(trace.trace_id); });
    body.append(row);
  }
  $("empty").hidden = traces.length > 0;
  const first = traces.length ? state.offset + 1 : 0;
  $("page-info").textContent = `${first}–${state.offset + traces.length} of ${state.total}`;
  $("newer").disabled = state.offset === 0;
  $("older").disabled = state.offset + traces.length >= state.total;
}

// ------------------------------------------------------------------ one trace
async function openTrace(traceId, runId) {
  let data;
  try {
    data = await getJSON(`/api/traces/${encodeURIComponent(traceId)}`);
  } catch (error) {
    showMessage(error.message);
    return;
  }
  showMessage("");
  state.traceId = data.trace_id;
  state.runs = data.runs;
  for (const row of document.querySelectorAll(".trace-row")) {
    row.classList.toggle("selected", row.dataset.traceId === state.traceId);
  }
  renderTrace();
  const root = state.runs.find((r) => r.parent_id === null) || state.runs[0];
  selectRun(runId && state.runs.some((r) => r.id === runId) ? runId : root && root.id, false);
}

function childrenOf(runs) {
  const ids = new Set(runs.map((r) => r.id));
  const children = new Map();
  for (const run of runs) {
    const parent = run.parent_id && ids.has(run.parent_id) ? run.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(run);
  }
  for (const list of children.values()) list.sort((a, b) => a.start_time - b.start_time);
  return children;
}

function renderTrace() {
  const runs = state.runs;
  const root = runs.find((r) => r.parent_id === null) || runs[0];
  $("detail-pane").hidden = false;
  $("trace-title").textContent = root ? root.name : state.traceId;
  const failed = runs.filter((r) => r.error).length;
  let summary = `trace ${state.traceId} · ${runs.length} run${runs.length === 1 ? "" : "s"}`;
  if (root) summary += ` · started ${fmtTime(root.start_time)} · ${fmtLatency(root.latency)}`;
  if (failed) summary += ` · ${failed} failed`;
  $("trace-summary").textContent = summary;

  const tree = $("tree");
  tree.replaceChildren();
  const children = childrenOf(runs);
  const walk = (run, depth) => {
    const row = el("div", "run-row");
    row.setAttribute("role", "treeitem");
    row.dataset.runId = run.id;
    row.tabIndex = 0;
    row.style.paddingLeft = `${0.5 + depth * 1.25}rem`;
    if (run.error) row.classList.add("failed");
    row.append(el("span", "run-name", run.name));
    row.append(el("span", `kind kind-${run.kind}`, run.kind));
    row.append(el("span", "num latency", fmtLatency(run.latency)));
    const tokens = el("span", "num tokens", tokenTotal(run) == null ? "" : `${fmtTokens(run)} tok`);
    tokens.title = tokenTitle(run);
    row.append(tokens);
    row.append(el("span", "num cost", run.cost == null ? "" : fmtCost(run.cost)));
    row.append(el("span", "mark", run.error ? "✗ error" : ""));
    row.addEventListener("click", () => selectRun(run.id, true));
    row.addEventListener("keydown", (event) => { if (event.key === "Enter") selectRun(run.id, true); });
    tree.append(row);
    for (const child of children.get(run.id) || []) walk(child, depth + 1);
  };
  for (const top of children.get(null) || []) walk(top, 0);
}

function fact(list, name, value) {
  if (value === null || value === undefined || value === "") return;
  list.append(el("dt", null, name));
  list.append(el("dd", null, value));
}

function selectRun(runId, updateHash) {
  const run = state.runs.find((r) => r.id === runId);
  if (!run) return;
  state.runId = runId;
  for (const row of document.querySelectorAll(".run-row")) {
    row.classList.toggle("selected", row.dataset.runId === runId);
  }
  $("run-detail").hidden = false;
  $("run-title").textContent = `${run.name} (${run.kind})`;
  const facts = $("run-facts");
  facts.replaceChildren();
  fact(facts, "run id", run.id);
  fact(facts, "started", fmtTime(run.start_time));
  fact(facts, "latency", fmtLatency(run.latency));
  fact(facts, "model", run.model);
  fact(facts, "provider", run.provider);
  fact(facts, "tokens", tokenTitle(run));
  fact(facts, "cost", run.cost == null ? null : fmtCost(run.cost));
  fact(facts, "tags", run.tags && run.tags.length ? run.tags.join(", ") : null);
  $("run-error").hidden = !run.error;
  $("run-error").textContent = run.stacktrace || run.error || "";
  $("run-inputs").textContent = pretty(run.inputs);
  $("run-outputs").textContent = run.error && run.outputs == null ? "— (failed)" : pretty(run.outputs);
  const hasMeta = run.metadata && Object.keys(run.metadata).length > 0;
  $("run-metadata-title").hidden = !hasMeta;
  $("run-metadata").hidden = !hasMeta;
  $("run-metadata").textContent = hasMeta ? pretty(run.metadata) : "";
  if (updateHash) writeHash();
}

function closeTrace() {
  state.traceId = null;
  state.runs = [];
  state.runId = null;
  $("detail-pane").hidden = true;
  $("run-detail").hidden = true;
  for (const row of document.querySelectorAll(".trace-row.selected")) row.classList.remove("selected");
  writeHash();
}

// ------------------------------------------------------------------ links: #trace=ID&run=ID
function writeHash() {
  const params = new URLSearchParams();
  if (state.traceId) params.set("trace", state.traceId);
  if (state.traceId && state.runId) params.set("run", state.runId);
  const hash = params.toString();
  history.replaceState(null, "", hash ? `#${hash}` : location.pathname + location.search);
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const trace = params.get("trace");
  if (trace) openTrace(trace, params.get("run"));
  else if (state.traceId) closeTrace();
}

// ------------------------------------------------------------------ wiring
let debounce = null;
function refilter() {
  state.offset = 0;
  loadTraces();
}

function setup() {
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); refilter(); });
  for (const id of ["f-name", "f-tag"]) {
    $(id).addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(refilter, 250);
    });
  }
  $("f-range").addEventListener("change", () => {
    $("custom-range").hidden = $("f-range").value !== "custom";
    refilter();
  });
  for (const id of ["f-since", "f-until", "f-errors"]) $(id).addEventListener("change", refilter);
  $("clear-filters").addEventListener("click", () => {
    $("filters").reset();  // (a control with id "reset" would shadow form.reset)
    $("custom-range").hidden = true;
    refilter();
  });
  $("refresh").addEventListener("click", () => loadTraces());
  $("newer").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadTraces(); });
  $("older").addEventListener("click", () => { state.offset += PAGE; loadTraces(); });
  $("close-detail").addEventListener("click", closeTrace);
  getJSON("/api/info").then((info) => { $("store").textContent = info.store; }).catch(() => {});
  window.addEventListener("hashchange", readHash);  // a pasted link (our own updates use replaceState)
  loadTraces().then(readHash);
}

document.addEventListener("DOMContentLoaded", setup);
