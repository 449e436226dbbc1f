// maru trace viewer: plain JavaScript, no framework, nothing loaded from elsewhere.
// Every value from a trace is put in the page with textContent, never parsed as HTML.
"use strict";

const PAGE = 50;
const state = { offset: 0, total: 0, traceId: null, runs: [], graph: null, runId: null, view: "tree" };
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
  if (seconds < 0.01) return `${(seconds * 1000).toFixed(1)} ms`;  // a graph's steps take fractions of one
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
    if (trace.paused_count) cell.append(el("span", "paused-note", " ⏸ paused"));
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

// ------------------------------------------------------------------ messages as a conversation
// A message is an object with content and a role (maru: role; LangChain dicts: type), or a
// [role, text] pair as graphs and prompts take them. Anything else is shown as JSON.
const ROLES = {
  system: "system", developer: "system",
  user: "user", human: "user",
  assistant: "assistant", ai: "assistant", AIMessageChunk: "assistant",
  tool: "tool", function: "tool",
};

function asMessage(value) {
  if (Array.isArray(value) && value.length === 2 && typeof value[1] === "string" && ROLES[value[0]]) {
    return { role: ROLES[value[0]], content: value[1] };
  }
  if (!value || typeof value !== "object" || Array.isArray(value) || !("content" in value)) return null;
  const role = ROLES[value.role] || ROLES[value.type];
  return role ? { ...value, role } : null;
}

// The messages in a run's input or output: a list of messages, one message, or a dict (a graph's
// state, a prompt's variables) with a list of messages under one key. null when there are none.
function conversationOf(value) {
  const all = (list) => {
    if (!Array.isArray(list) || list.length === 0) return null;
    const messages = list.map(asMessage);
    return messages.every((m) => m) ? messages : null;
  };
  if (Array.isArray(value)) return all(value) && { messages: all(value), key: null };
  const one = asMessage(value);
  if (one) return { messages: [one], key: null };
  if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const messages = all(item);
      if (messages) return { messages, key };
    }
  }
  return null;
}

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part) => (part && part.type === "text" ? part.text : `[${part && part.type}]`)).join("");
  }
  return pretty(content);
}

function toolCallOf(call) {
  const fn = call.function || {};  // OpenAI's shape: {function: {name, arguments}}
  const name = call.name || fn.name || "?";
  let args = call.args !== undefined ? call.args : fn.arguments;
  if (typeof args === "string") { try { args = JSON.parse(args); } catch (e) { /* keep the text */ } }
  return { name, args };
}

function bubble(message) {
  const box = el("div", `msg msg-${message.role}`);
  const head = el("div", "msg-head", message.role);
  if (message.name) head.append(el("span", "dim", ` · ${message.name}`));
  if (message.tool_call_id) head.append(el("span", "dim", ` · ${message.tool_call_id}`));
  box.append(head);
  const text = textOf(message.content);
  if (text) box.append(el("div", "msg-text", text));
  for (const call of message.tool_calls || []) {
    const { name, args } = toolCallOf(call);
    const line = el("div", "tool-call");
    line.append(el("span", "tool-name", name));
    line.append(el("code", "tool-args", typeof args === "string" ? args : JSON.stringify(args)));
    box.append(line);
  }
  return box;
}

// The value as a conversation (plus the dict's other keys as JSON) when it holds messages; the
// raw JSON stays one click away, and is shown open when there is no conversation.
function showValue(prefix, value, text) {
  const chat = $(`${prefix}-chat`);
  const found = text === undefined ? conversationOf(value) : null;
  chat.replaceChildren();
  chat.hidden = !found;
  $(`${prefix}-raw`).open = !found;
  $(prefix).textContent = text === undefined ? pretty(value) : text;
  if (!found) return;
  if (found.key) chat.append(el("div", "chat-key dim", found.key));
  for (const message of found.messages) chat.append(bubble(message));
  if (found.key) {
    const rest = { ...value };
    delete rest[found.key];
    if (Object.keys(rest).length) chat.append(el("pre", "chat-rest", pretty(rest)));
  }
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
  state.graph = data.graph || null;
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
    if (run.error && !paused(run)) row.classList.add("failed");
    row.append(el("span", "run-name", run.name));
    row.append(el("span", `kind kind-${run.kind}`, run.kind));
    row.append(el("span", "num latency", fmtLatency(run.latency)));
    const tokens = el("span", "num tokens", tokenTotal(run) == null ? "" : `${fmtTokens(run)} tok`);
    tokens.title = tokenTitle(run);
    row.append(tokens);
    row.append(el("span", "num cost", run.cost == null ? "" : fmtCost(run.cost)));
    row.append(el("span", "mark", run.error ? (paused(run) ? "⏸ paused" : "✗ error") : ""));
    if (paused(run)) row.classList.add("paused");
    row.addEventListener("click", () => selectRun(run.id, true));
    row.addEventListener("keydown", (event) => { if (event.key === "Enter") selectRun(run.id, true); });
    tree.append(row);
    for (const child of children.get(run.id) || []) walk(child, depth + 1);
  };
  for (const top of children.get(null) || []) walk(top, 0);
  renderTimeline(children);
  renderCheckpoints();
  showView(state.view);
}

// A node that called interrupt() ends with GraphInterrupt: the thread waits for an answer, nothing failed.
function paused(run) {
  return Boolean(run.error) && run.error.startsWith("GraphInterrupt");
}

// The timeline: one bar per run, in tree order, placed by its start and end within the trace.
function renderTimeline(children) {
  const box = $("timeline");
  box.replaceChildren();
  const runs = state.runs;
  if (!runs.length) return;
  const t0 = Math.min(...runs.map((r) => r.start_time));
  const t1 = Math.max(...runs.map((r) => r.end_time));
  const span = Math.max(t1 - t0, 1e-6);
  const axis = el("div", "tl-axis");
  axis.append(el("span", null, "0"));
  axis.append(el("span", null, fmtLatency(span / 2)));
  axis.append(el("span", null, fmtLatency(span)));
  box.append(axis);
  const walk = (run, depth) => {
    const row = el("div", "tl-row");
    row.dataset.runId = run.id;
    row.tabIndex = 0;
    const label = el("span", "tl-name", run.name);
    label.style.paddingLeft = `${depth * 0.9}rem`;
    row.append(label);
    const lane = el("span", "tl-lane");
    const bar = el("span", `tl-bar kind-${run.kind}`);
    if (run.error) bar.classList.add(paused(run) ? "paused" : "failed");
    const width = Math.max(((run.end_time - run.start_time) / span) * 100, 0.4);  // a short run stays visible
    bar.style.left = `${Math.min(((run.start_time - t0) / span) * 100, 100 - width)}%`;
    bar.style.width = `${width}%`;
    bar.title = `${run.name} · ${fmtLatency(run.latency)} · starts at +${fmtLatency(run.start_time - t0)}`;
    lane.append(bar);
    row.append(lane);
    row.append(el("span", "num latency", fmtLatency(run.latency)));
    row.addEventListener("click", () => selectRun(run.id, true));
    box.append(row);
    for (const child of children.get(run.id) || []) walk(child, depth + 1);
  };
  for (const top of children.get(null) || []) walk(top, 0);
}

function showView(view) {
  state.view = view;
  $("tree").hidden = view !== "tree";
  $("timeline").hidden = view !== "timeline";
  $("show-tree").setAttribute("aria-selected", String(view === "tree"));
  $("show-timeline").setAttribute("aria-selected", String(view === "timeline"));
}

// A graph run: the checkpoints its thread saved (read from the trace, not from the saver).
function renderCheckpoints() {
  const graph = state.graph;
  const saved = graph ? graph.checkpoints : [];
  $("graph-panel").hidden = saved.length === 0;
  const body = $("checkpoints").querySelector("tbody");
  body.replaceChildren();
  if (!saved.length) return;
  const title = $("graph-title");
  title.replaceChildren("checkpoints · thread ", el("span", "thread-id", graph.threads.join(", ")));
  const t0 = Math.min(...state.runs.map((r) => r.start_time));
  for (const cp of saved) {
    const row = el("tr", `cp-row cp-${cp.source}`);
    row.dataset.runId = cp.run_id;
    row.append(el("td", "num", String(cp.step)));
    row.append(el("td", "source", cp.source));
    row.append(el("td", "writers", cp.writers.length ? cp.writers.join(", ") : "—"));
    row.append(el("td", "next", cp.next.length ? cp.next.join(", ") : "END"));
    const saved = el("td", "num dim", cp.created_at ? `+${fmtLatency(Math.max(cp.created_at - t0, 0))}` : "—");
    if (cp.created_at) saved.title = fmtTime(cp.created_at);
    row.append(saved);
    row.title = `saved by ${cp.run_name}`;
    row.addEventListener("click", () => selectRun(cp.run_id, true));
    body.append(row);
  }
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
  for (const row of document.querySelectorAll(".run-row, .tl-row, .cp-row")) {
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
  $("run-error").classList.toggle("paused", paused(run));
  $("run-error").textContent = paused(run)
    ? "⏸ paused: this node called interrupt(); the thread waits for invoke(Command(resume=…)), which runs the node again"
    : run.stacktrace || run.error || "";
  showValue("run-inputs", run.inputs);
  if (run.error && run.outputs == null) showValue("run-outputs", null, paused(run) ? "— (paused)" : "— (failed)");
  else showValue("run-outputs", run.outputs);
  const hasMeta = run.metadata && Object.keys(run.metadata).length > 0;
  $("run-metadata-title").hidden = !hasMeta;
  $("run-metadata").hidden = !hasMeta;
  $("run-metadata").textContent = hasMeta ? pretty(run.metadata) : "";
  if (updateHash) writeHash();
}

function closeTrace() {
  state.traceId = null;
  state.runs = [];
  state.graph = null;
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
  $("show-tree").addEventListener("click", () => showView("tree"));
  $("show-timeline").addEventListener("click", () => showView("timeline"));
  getJSON("/api/info").then((info) => { $("store").textContent = info.store; }).catch(() => {});
  window.addEventListener("hashchange", readHash);  // a pasted link (our own updates use replaceState)
  loadTraces().then(readHash);
}

document.addEventListener("DOMContentLoaded", setup);
