// maru experiments page: experiments side by side, question by question. Text only (never innerHTML
// with data), nothing fetched from anywhere but this server.
"use strict";

const METRICS = ["recall@1", "recall@5", "recall@10", "ndcg@10", "mrr", "hit@1", "exact_match", "f1", "contains",
  "citations", "faithfulness", "relevance"];
const state = { experiments: [], selected: [], comparison: null, metric: null };
const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error((await response.json()).detail || response.statusText);
  return response.json();
}

const score = (value) => (value === null || value === undefined ? "" : Number(value).toFixed(3));
const measured = (summaries) => METRICS.filter((m) => summaries.some((s) => s[m] !== undefined));

// ------------------------------------------------------------------ the list
async function loadExperiments() {
  state.experiments = (await getJSON("/api/experiments")).experiments;
  const body = $("experiments").querySelector("tbody");
  body.replaceChildren();
  $("no-experiments").hidden = state.experiments.length > 0;
  for (const e of state.experiments) {
    const row = el("tr");
    row.dataset.name = e.name;
    const box = el("input");
    box.type = "checkbox";
    box.checked = state.selected.includes(e.name);
    box.addEventListener("change", () => toggle(e.name, box.checked));
    const cell = el("td");
    cell.append(box);
    const done = `${e.done}/${e.questions}${e.status === "done" ? "" : " …"}`;
    row.append(cell, el("td", e.name, "name"), el("td", e.dataset), el("td", done, "num"),
      el("td", JSON.stringify(e.config), "config"));
    body.append(row);
  }
}

function toggle(name, on) {
  state.selected = on ? [...state.selected.filter((n) => n !== name), name] : state.selected.filter((n) => n !== name);
  writeHash();
  loadComparison();
}

// ------------------------------------------------------------------ side by side
async function loadComparison() {
  $("question-detail").hidden = true;
  if (!state.selected.length) {
    $("comparison").hidden = true;
    return;
  }
  const query = state.selected.map((n) => `name=${encodeURIComponent(n)}`).join("&");
  state.comparison = await getJSON(`/api/experiments/compare?${query}`);
  const metrics = measured(state.comparison.experiments.map((e) => e.summary));
  if (!metrics.includes(state.metric)) state.metric = metrics.includes("ndcg@10") ? "ndcg@10" : metrics[0];
  const select = $("metric");
  select.replaceChildren(...metrics.map((m) => { const o = el("option", m); o.value = m; return o; }));
  select.value = state.metric || "";
  renderSummary(metrics);
  renderQuestions();
  $("comparison").hidden = false;
}

function renderSummary(metrics) {
  const experiments = state.comparison.experiments;
  const head = el("tr");
  head.append(el("th", "experiment"), ...metrics.map((m) => el("th", m, "num")));
  $("summary").querySelector("thead").replaceChildren(head);
  const rows = experiments.map((e) => {
    const row = el("tr");
    row.append(el("td", e.name, "name"));
    for (const m of metrics) {
      const best = Math.max(...experiments.map((x) => x.summary[m] ?? -Infinity));
      const cell = el("td", score(e.summary[m]), "num");
      if (experiments.length > 1 && e.summary[m] === best) cell.classList.add("best");
      row.append(cell);
    }
    return row;
  });
  $("summary").querySelector("tbody").replaceChildren(...rows);
}

function valuesOf(question) {
  return question.results.map((r) => (r && r.scores ? r.scores[state.metric] : undefined));
}

function renderQuestions() {
  const names = state.comparison.experiments.map((e) => e.name);
  const head = el("tr");
  head.append(el("th", "question"), ...names.map((n) => el("th", n, "num")));
  if (names.length > 1) head.append(el("th", "Δ", "num"));
  $("questions").querySelector("thead").replaceChildren(head);
  const only = $("only-differences").checked && names.length > 1;
  const rows = [];
  for (const q of state.comparison.questions) {
    const values = valuesOf(q);
    const known = values.filter((v) => v !== undefined && v !== null);
    const differs = known.length !== values.length || new Set(known.map(score)).size > 1;
    if (only && !differs) continue;
    const row = el("tr");
    row.dataset.id = q.id;
    row.append(el("td", `${q.id}: ${q.question}`, "question"));
    for (const v of values) row.append(el("td", score(v), "num"));
    if (names.length > 1) {
      const first = values[0], last = values[values.length - 1];
      const delta = first == null || last == null ? null : last - first;
      const cell = el("td", delta === null ? "" : (delta > 0 ? "+" : "") + delta.toFixed(3), "num delta");
      if (delta > 0) cell.classList.add("up");
      if (delta < 0) cell.classList.add("down");
      row.append(cell);
    }
    row.addEventListener("click", () => showQuestion(q, row));
    rows.push(row);
  }
  $("questions").querySelector("tbody").replaceChildren(...rows);
  $("question-count").textContent = `${rows.length} of ${state.comparison.questions.length} questions`;
}

// ------------------------------------------------------------------ one question, every experiment
function showQuestion(question, row) {
  for (const r of document.querySelectorAll("#questions tr.selected")) r.classList.remove("selected");
  row.classList.add("selected");
  $("question-title").textContent = `${question.id}: ${question.question}`;
  const sides = question.results.map((result, i) => side(state.comparison.experiments[i].name, result));
  $("question-sides").replaceChildren(...sides);
  $("question-detail").hidden = false;
}

function side(name, result) {
  const box = el("div", null, "side");
  box.append(el("h4", name));
  if (!result) {
    box.append(el("p", "not run in this experiment", "dim"));
    return box;
  }
  if (result.error) box.append(el("p", result.error, "unsupported"));
  const scores = Object.entries(result.scores).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${score(v)}`);
  box.append(el("p", scores.join(" · "), "dim scores"));
  const out = result.output || {};
  if (out.answer !== null && out.answer !== undefined) {
    box.append(el("h4", "answer"), el("p", out.answer, "answer"));
    if (out.answers && out.answers.length) box.append(el("p", `expected: ${out.answers.join(" | ")}`, "dim"));
  }
  if (out.ranked && out.ranked.length) {
    const ranked = el("p");
    ranked.append(el("span", "ranked: ", "dim"));
    out.ranked.forEach((id, i) => {
      ranked.append(el("code", id, out.relevant && out.relevant[id] > 0 ? "relevant" : ""));
      if (i < out.ranked.length - 1) ranked.append(" ");
    });
    box.append(ranked);
  }
  for (const check of out.citations || []) {
    const line = `[${check.n}] ${check.supported ? "supported" : "not supported"} (overlap ${check.overlap}): ${check.claim}`;
    box.append(el("p", line, check.supported ? "citation" : "citation unsupported"));
  }
  for (const [metric, j] of Object.entries(result.judgements || {})) {
    box.append(el("p", `${metric} ${j.score === null ? "—" : score(j.score)} (${j.model}): ${j.reasoning}`, "judgement"));
  }
  if (result.trace_id) {
    const link = el("a", `trace ${result.trace_id}`, "trace-link");
    link.href = `/#trace=${encodeURIComponent(result.trace_id)}`;
    box.append(link);
  }
  return box;
}

// ------------------------------------------------------------------ links: #compare=A,B
function writeHash() {
  const hash = state.selected.length ? `#compare=${state.selected.map(encodeURIComponent).join(",")}` : "";
  history.replaceState(null, "", hash || location.pathname);
}

function readHash() {
  const value = new URLSearchParams(location.hash.slice(1)).get("compare");
  state.selected = value ? value.split(",").filter(Boolean) : [];
}

document.addEventListener("DOMContentLoaded", async () => {
  readHash();
  $("metric").addEventListener("change", () => { state.metric = $("metric").value; renderQuestions(); });
  $("only-differences").addEventListener("change", renderQuestions);
  $("close-question").addEventListener("click", () => { $("question-detail").hidden = true; });
  await loadExperiments();
  await loadComparison();
});
