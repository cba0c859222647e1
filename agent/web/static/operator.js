"use strict";
// The operator's page: it draws what the page's server sends and sends what the operator asks; it holds no rules.
const params = new URLSearchParams(location.search);
if (params.get("token")) sessionStorage.setItem("closedloop.token", params.get("token"));
const token = sessionStorage.getItem("closedloop.token") || "";
const $ = (id) => document.getElementById(id);
const byInput = $("by");
byInput.value = localStorage.getItem("closedloop.by") || "";
byInput.addEventListener("change", () => localStorage.setItem("closedloop.by", byInput.value.trim()));

const DONE = { approve: "approved", reject: "rejected", edit: "edited" };
const ENDED = new Set(["finished", "stopped", "failed"]);
let session = null;        // name, variables, objectives, units
let status = null;         // the last status
let shownCheckpoint = "";  // the id of the checkpoint the form shows (kept while the operator types)
let budgetTyped = false;   // the operator typed a budget not yet set: refreshes leave the field alone

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
function num(v) {
  return typeof v === "number" ? (Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(4)
                                  : String(Number(v.toPrecision(6)))) : String(v);
}
function point(p) { return p ? Object.entries(p).map(([k, v]) => `${k}=${num(v)}`).join(", ") : "-"; }
function value(text) { const t = text.trim(); return t !== "" && !isNaN(Number(t)) ? Number(t) : t; }
function range(r) { return r ? r.map(num).join(" to ") : "-"; }
function label(name) { const u = session && session.units[name]; return u ? `${name} [${u}]` : name; }

async function api(path, body) {
  const init = { headers: { "X-Closedloop-Token": token } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  return response.json();
}
function say(text, ok) { const m = $("message"); m.textContent = text; m.className = ok ? "ok" : "error"; }

async function send(request, done) {
  const by = byInput.value.trim();
  if (by) request.by = by;
  try {
    const reply = await api("/api/request", request);
    if (reply.ok) say(done, true);
    else say(reply.code === "late" ? `too late: answered already by ${reply.result.answered_by || "someone else"}`
             : `refused: ${reply.error}`, false);
    refresh();
    return reply;
  } catch (e) { say(`the page's server did not answer: ${e}`, false); }
}

// status ---------------------------------------------------------------------------------------------------------
function waitingText(w) {
  if (!w) return "";
  const what = { review: `the review of ${(w.proposals || []).join(", ")}`, points: "points to measure",
                 paused: "a resume (paused)", failures: "an answer after failed runs" }[w.kind] || `checkpoint ${w.checkpoint}`;
  const since = Date.parse(w.since);
  if (isNaN(since)) return `waiting for ${what}`;
  const minutes = Math.max(0, Math.floor((Date.now() - since) / 60000));
  return `waiting for ${what} since ${minutes} min (${new Date(since).toLocaleTimeString([], { hour12: false })})`;
}

async function refreshStatus() {
  const s = await api("/api/status");
  if (s.ok === false) { say(s.error, false); return; }
  status = s;
  $("state").textContent = s.state || "unknown";
  $("state").className = "state " + (s.state || "");
  $("process").textContent = s.running ? "" : "(no session process is running)";
  $("waiting").textContent = waitingText(s.waiting);
  const held = Object.entries(s.instruments || {}).filter(([, i]) => i.suspended);
  $("suspended").textContent = held.map(([name, i]) => `${name} is suspended: ${i.suspended}`).join("; ");
  $("experiments").textContent = `experiments ${s.experiments} of ${s.budget} (${s.failed} failed` +
    (s.interrupted ? `, ${s.interrupted} interrupted or aborted` : "") + ")";
  $("progress").max = Math.max(1, s.budget); $("progress").value = Math.min(s.experiments, s.budget);
  $("best").textContent = s.best_value === null || s.best_value === undefined ? `best ${s.objective}: none yet`
    : `best ${s.objective} ${num(s.best_value)} at ${point(s.best_point)} (${s.best_proposal})`;
  $("queued").textContent = s.queued ? `${s.queued} point(s) queued by operators` : "";
  $("error").textContent = s.error ? `error: ${s.error}` : "";
  if (!budgetTyped && document.activeElement !== $("budget")) $("budget").value = s.budget;
  const body = $("instruments").tBodies[0];
  body.replaceChildren();
  for (const [name, i] of Object.entries(s.instruments || {})) {
    const row = el("tr", null, { "data-instrument": name, "data-state": i.state });
    for (const cell of [name, i.state, i.proposal || "", i.suspended || i.waiting || i.error || ""]) row.append(el("td", cell));
    body.append(row);
  }
  showLimits(s.reach || {});
  const ended = !s.running;
  $("events-note").textContent = ended ? "no session process is running: its history is beside" : "";
  for (const b of $("controls").querySelectorAll("button, input")) b.disabled = ended;
  $("controls-note").textContent = !ended ? "" : ENDED.has(s.state)
    ? `the session has ${s.state === "failed" ? "failed" : "ended"}: nothing to control`
    : "no session process is running: controls come back when `closedloop resume` starts one";
  await refreshResults(s.experiments + s.failed + s.interrupted, ended);
}

function showLimits(reach) {
  const rows = [];
  for (const [name, v] of Object.entries(session.variables)) {
    const device = (reach[name] && reach[name].device_limits) || v.device_limits;
    const row = el("tr", null, { "data-variable": name });
    for (const cell of [label(name), v.values ? v.values.join(", ") : range(v.bounds), range(v.hard_limits),
                        v.max_step === null || v.max_step === undefined ? "-" : num(v.max_step), range(device)]) {
      row.append(el("td", cell));
    }
    rows.push(row);
  }
  $("limits").tBodies[0].replaceChildren(...rows);
}

let resultsSeen = -1;  // runs counted when the results were last drawn
let historySeen = "";
async function refreshResults(count, ended) {
  const key = `${count}/${ended}`;
  if (key === historySeen) return;
  historySeen = key;
  if (count !== resultsSeen) {
    resultsSeen = count;
    const rows = (await api("/api/results")).rows || [];
    showResults(rows);
    drawCharts(rows);
    refreshBelief();
  }
  refreshHistory();
}

function who(row) {
  const m = /^(\w+)(?: by (.+?))?(?: via (\w+))?$/.exec(row.decided || "");
  if (!m) return "not reviewed";
  if (m[2] === "policy" || m[3] === "policy") return "policy";
  return m[3] ? `${m[2] || "?"} (${m[3]})` : m[2] || m[1];
}

function showResults(rows) {
  const outputs = Object.keys(session.objectives);
  const body = $("observations").tBodies[0];
  const shown = [];
  for (const r of rows.slice().reverse()) {
    const at = {};
    for (const name of Object.keys(session.variables)) {
      const read = r[`${name}_read`];
      at[name] = read === null || read === undefined ? r[name] : read;
    }
    const measured = {};
    for (const name of outputs) if (r[name] !== null && r[name] !== undefined) measured[name] = r[name];
    const row = el("tr", null, { "data-proposal": r.proposal, "data-status": r.status });
    for (const cell of [r.experiment, r.proposal, r.status, point(at), point(measured), r.decided || "not reviewed",
                        r.why || "", r.error || ""]) row.append(el("td", cell));
    shown.push(row);
  }
  body.replaceChildren(...shown);
}

async function refreshHistory() {
  const lines = ((await api("/api/history")).events || []).slice().reverse();
  $("history").replaceChildren(...lines.map((e) => el("li", `${new Date(e.time * 1000).toLocaleString([], { hour12: false })} ${e.kind} ${e.message}`,
                                                       { "data-kind": e.kind })));
  if (!lines.length) $("history").append(el("li", "nothing recorded yet"));
}

// charts: hand-written SVG ----------------------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
const W = 480, H = 250, L = 66, R = 10, T = 10, B = 40;
const SHAPES = { ok: "circle", failed: "cross", interrupted: "triangle", aborted: "square" };
const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}
function ticks(low, high, n) {
  if (!(high > low)) { const d = Math.abs(low) * 0.1 || 1; low -= d; high += d; }
  const raw = (high - low) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return { low, high, ticks: out };
}
function marker(shape, x, y, colour, size) {
  const s = size || 4;
  if (shape === "cross") {
    return svg("path", { d: `M${x - s},${y - s}L${x + s},${y + s}M${x - s},${y + s}L${x + s},${y - s}`, stroke: colour,
                         "stroke-width": 2, fill: "none" });
  }
  if (shape === "triangle") return svg("path", { d: `M${x},${y - s - 1}L${x + s},${y + s}L${x - s},${y + s}Z`, fill: colour });
  if (shape === "square") return svg("rect", { x: x - s, y: y - s, width: 2 * s, height: 2 * s, fill: colour });
  return svg("circle", { cx: x, cy: y, r: s, fill: colour });
}
// axes, grid and labels on an svg; returns the x and y scales
function axes(chart, xr, yr, xlabel, ylabel, xpad) {
  const ypad = (yr[1] - yr[0]) * 0.06;
  const xs = ticks(xr[0] - (xpad || 0), xr[1] + (xpad || 0), 6), ys = ticks(yr[0] - ypad, yr[1] + ypad, 5);
  const x = (v) => L + ((v - xs.low) / (xs.high - xs.low)) * (W - L - R);
  const y = (v) => H - B - ((v - ys.low) / (ys.high - ys.low)) * (H - T - B);
  for (const t of ys.ticks) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(t), y2: y(t), class: "grid" }),
                 svg("text", { x: L - 4, y: y(t) + 4, "text-anchor": "end" }, num(t)));
  }
  for (const t of xs.ticks.filter((t) => Number.isInteger(t) || !xlabel.startsWith("experiment"))) chart.append(svg("text", { x: x(t), y: H - B + 14, "text-anchor": "middle" }, num(t)));
  chart.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }),
               svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }),
               svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "xlabel" }, xlabel),
               svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", class: "ylabel",
                             transform: `rotate(-90 12 ${(T + H - B) / 2})` }, ylabel));
  return { x, y, ys };
}
function legendItem(shape, colour, text, line) {
  const item = el("span");
  const icon = svg("svg", { width: 16, height: 12, viewBox: "0 0 16 12" });
  icon.append(line ? svg("line", { x1: 1, x2: 15, y1: 6, y2: 6, stroke: colour, "stroke-width": line === "band" ? 8 : 2,
                                   "stroke-opacity": line === "band" ? 0.45 : 1 })
                   : marker(shape, 8, 6, colour, 4));
  item.append(icon, document.createTextNode(` ${text}`));
  return item;
}
function figure(id, caption) {
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "data-chart": id, "aria-label": caption });
  const fig = el("figure");
  fig.append(el("figcaption", caption), chart);
  return [fig, chart];
}

// each objective and each variable against experiment number, marked by how each run ended and who released it
function drawCharts(rows) {
  const releasers = [...new Set(rows.map(who))];
  const colour = (row) => PALETTE[releasers.indexOf(who(row)) % PALETTE.length];
  const legend = $("chart-legend");
  legend.replaceChildren();
  for (const st of Object.keys(SHAPES).filter((k) => rows.some((r) => r.status === k))) {
    legend.append(legendItem(SHAPES[st], "#444", st));
  }
  if (rows.length) legend.append(legendItem(null, "#d9731b", "best so far", "line"));
  for (const name of releasers) legend.append(legendItem("square", PALETTE[releasers.indexOf(name) % PALETTE.length], `released by ${name}`));
  const figures = [];
  const last = Math.max(2, rows.length);
  for (const [objective, direction] of Object.entries(session.objectives)) {
    const [fig, chart] = figure(`objective:${objective}`, `${objective} (${direction})`);
    const measured = rows.filter((r) => typeof r[objective] === "number");
    const values = measured.map((r) => r[objective]);
    if (!values.length) chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no result yet"));
    else {
      const { x, y, ys } = axes(chart, [1, last], [Math.min(...values), Math.max(...values)], "experiment", label(objective), 0.4);
      let best = null;
      const line = [];
      const better = (a, b) => (direction === "minimize" ? Math.min(a, b) : Math.max(a, b));
      for (const r of rows) {
        const v = r[objective];
        const measuredHere = typeof v === "number";
        if (measuredHere && r.status === "ok") {
          best = best === null ? v : better(best, v);
        }
        if (best !== null) line.push(`${x(r.experiment).toFixed(1)},${y(best).toFixed(1)}`);
        const at = measuredHere ? y(v) : y(ys.low) - 6;  // no value: along the bottom
        const dot = marker(SHAPES[r.status] || "circle", x(r.experiment), at, colour(r));
        dot.setAttribute("class", "pt");
        for (const [k, val] of Object.entries({ experiment: r.experiment, status: r.status, by: who(r), value: measuredHere ? v : "" })) {
          dot.setAttribute(`data-${k}`, val);
        }
        dot.append(svg("title", {}, `#${r.experiment} ${r.proposal} ${r.status}: ${measuredHere ? num(v) : r.error || "no value"}; ${who(r)}`));
        chart.append(dot);
      }
      if (line.length) chart.append(svg("polyline", { points: line.join(" "), class: "best", "data-best": best }));
    }
    figures.push(fig);
  }
  for (const name of Object.keys(session.variables)) {
    const [fig, chart] = figure(`variable:${name}`, label(name));
    const v = session.variables[name];
    const at = (r) => { const read = r[`${name}_read`]; return typeof read === "number" ? read : r[name]; };
    const values = rows.map(at).filter((x) => typeof x === "number");
    if (!values.length) chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, v.values ? "not a number" : "no run yet"));
    else {
      const lo = v.bounds ? Math.min(v.bounds[0], ...values) : Math.min(...values);
      const hi = v.bounds ? Math.max(v.bounds[1], ...values) : Math.max(...values);
      const { x, y } = axes(chart, [1, last], [lo, hi], "experiment", label(name), 0.4);
      for (const r of rows) {
        if (typeof at(r) !== "number") continue;
        const dot = marker(SHAPES[r.status] || "circle", x(r.experiment), y(at(r)), colour(r));
        dot.setAttribute("class", "pt");
        dot.setAttribute("data-experiment", r.experiment);
        dot.setAttribute("data-status", r.status);
        dot.append(svg("title", {}, `#${r.experiment} ${r.proposal} ${r.status}: ${name}=${num(at(r))}; ${who(r)}`));
        chart.append(dot);
      }
    }
    figures.push(fig);
  }
  $("charts").replaceChildren(...figures);
}

// the model's belief along one variable through the best point, as the session's planner says it
let beliefAsked = 0;
async function refreshBelief() {
  const variable = $("belief-variable").value;
  if (!variable) { $("belief-why").textContent = "no model: no numeric variable"; return; }
  const asked = ++beliefAsked;
  const reply = await api(`/api/belief?variable=${encodeURIComponent(variable)}`);
  if (asked !== beliefAsked) return;  // a later question is on its way
  drawBelief(reply);
}
function drawBelief(reply) {
  if (reply.busy) return;  // the planner is at work: what is drawn stays until the next checkpoint
  const b = reply.belief;
  $("belief-why").textContent = reply.ok === false ? reply.error : b ? `fitted on ${b.fitted_on} ok runs, through ${point(b.through)}` +
    (reply.source === "rebuilt" ? " (the planner rebuilt from the store)" : "") : reply.why || "no model";
  const legend = $("belief-legend");
  legend.replaceChildren();
  if (!b) { $("belief").replaceChildren(); return; }
  legend.append(legendItem(null, "#1f4e99", "model mean", "line"), legendItem(null, "#9bbbe6", "±2 sd", "band"),
                legendItem("circle", "#333", "observations"), legendItem(null, "#d9731b", "best point", "line"));
  const figures = [];
  for (const objective of Object.keys(b.mean)) {
    const [fig, chart] = figure(`belief:${objective}`, `${objective} against ${label(b.variable)}`);
    const mean = b.mean[objective], sd = b.std[objective];
    const upper = mean.map((m, i) => m + 2 * sd[i]), lower = mean.map((m, i) => m - 2 * sd[i]);
    const seen = b.observed[objective].filter((v) => typeof v === "number");
    const xs = [...b.x, ...b.observed.x];
    const { x, y } = axes(chart, [Math.min(...xs), Math.max(...xs)], [Math.min(...lower, ...seen), Math.max(...upper, ...seen)],
                          label(b.variable), label(objective));
    const band = [...b.x.map((v, i) => `${x(v).toFixed(1)},${y(upper[i]).toFixed(1)}`),
                  ...b.x.map((v, i) => `${x(v).toFixed(1)},${y(lower[i]).toFixed(1)}`).reverse()];
    chart.append(svg("polygon", { points: band.join(" "), class: "band" }),
                 svg("polyline", { points: b.x.map((v, i) => `${x(v).toFixed(1)},${y(mean[i]).toFixed(1)}`).join(" "), class: "mean" }),
                 svg("line", { x1: x(b.best_x), x2: x(b.best_x), y1: T, y2: H - B, class: "through" }));
    b.observed.x.forEach((v, i) => {
      const o = b.observed[objective][i];
      if (typeof o === "number") chart.append(svg("circle", { cx: x(v), cy: y(o), r: 3, fill: "#333", class: "observed" }));
    });
    figures.push(fig);
  }
  $("belief").replaceChildren(...figures);
}

// the checkpoint -------------------------------------------------------------------------------------------------
function proposalForm(p, info) {
  const box = el("div", null, { class: "proposal", "data-proposal": p.id });
  const head = el("div");
  head.append(el("strong", p.id), el("span", ` ${p.why}` + (p.origin === "operator" ? " (operator)" : ""), { class: "muted" }));
  box.append(head);
  const table = el("table");
  table.append(el("tr")); table.rows[0].append(...["variable", "proposed", "now", "move", "bounds", "hard limits", "max step"].map(h => el("th", h)));
  for (const [name, v] of Object.entries(p.setpoints)) {
    const meta = info.variables[name] || {};
    const now = p.current ? p.current[name] : null;
    const move = typeof v === "number" && typeof now === "number" ? num(v - now) : "-";
    const units = meta.units ? ` ${meta.units}` : "";
    const row = el("tr");
    row.append(el("td", name + units), el("td", num(v)), el("td", now === null || now === undefined ? "-" : num(now)),
               el("td", move), el("td", meta.values ? meta.values.join(", ") : range(meta.bounds)), el("td", range(meta.hard_limits)),
               el("td", meta.max_step === null || meta.max_step === undefined ? "-" : num(meta.max_step)));
    table.append(row);
  }
  const wrap = el("div", null, { class: "scroll" });
  wrap.append(table);
  box.append(wrap);
  const guess = p.prediction ? Object.entries(p.prediction).map(([k, g]) => `${k} ${num(g.mean)} ± ${num(g.std)}`).join(", ")
                             : "no prediction";
  box.append(el("div", `predicted: ${guess}` + (p.acquisition !== null && p.acquisition !== undefined ? `; acquisition ${num(p.acquisition)}` : ""), { class: "muted" }));
  const choose = el("div");
  for (const verdict of ["approve", "reject", "edit"]) {
    const lab = el("label");
    const radio = el("input", null, { type: "radio", name: `verdict-${p.id}`, value: verdict });
    if (verdict === "approve") radio.checked = true;
    radio.addEventListener("change", () => { edits.hidden = verdict !== "edit"; });
    lab.append(radio, document.createTextNode(` ${verdict} `));
    choose.append(lab);
  }
  choose.append(el("input", null, { type: "text", class: "reason", name: `reason-${p.id}`, placeholder: "why (for the audit trail)" }));
  box.append(choose);
  const edits = el("div"); edits.hidden = true;
  for (const [name, v] of Object.entries(p.setpoints)) {
    const lab = el("label", `${name} `);
    lab.append(el("input", null, { type: "text", name: `edit-${p.id}-${name}`, value: String(v) }));
    edits.append(lab);
  }
  box.append(edits);
  return box;
}

function verdicts(info) {
  return info.proposals.map((p) => {
    const verdict = document.querySelector(`input[name="verdict-${p.id}"]:checked`).value;
    const answer = { proposal_id: p.id, verdict, reason: document.querySelector(`input[name="reason-${p.id}"]`).value };
    if (verdict === "edit") {
      answer.setpoints = {};
      for (const name of Object.keys(p.setpoints)) {
        const text = document.querySelector(`input[name="edit-${p.id}-${name}"]`).value;
        if (text.trim() !== String(p.setpoints[name])) answer.setpoints[name] = value(text);
      }
      if (!Object.keys(answer.setpoints).length) { answer.verdict = "approve"; delete answer.setpoints; }
    }
    return answer;
  });
}

const STOP_QUESTION = "Stop the session? It ends after the current run, and is recorded as stopped by you.";
function showCheckpoint(info) {
  const section = $("checkpoint");
  if (!info) { section.hidden = true; shownCheckpoint = ""; return; }
  if (info.checkpoint === shownCheckpoint) return;
  shownCheckpoint = info.checkpoint;
  section.hidden = false;
  refreshBelief();  // the planner is idle while the session waits: the session's model answers
  const what = { review: "Review", points: "No points left", paused: "Paused", failures: "Runs failed" }[info.kind] || info.kind;
  $("checkpoint-title").textContent = `${what}: checkpoint ${info.checkpoint} (iteration ${info.iteration})`;
  $("checkpoint-reason").textContent = info.reason || "";
  const last = info.last;
  $("checkpoint-context").textContent = "when asked: " +
    (last ? `last result: ${last.proposal} ${last.status}` + (last.status === "ok" ? ` ${point(last.values)}` : `: ${last.error}`)
          : "no result yet");
  const proposals = $("proposals"); proposals.replaceChildren();
  for (const p of info.proposals) proposals.append(proposalForm(p, info));
  const actions = $("checkpoint-actions"); actions.replaceChildren();
  const stop = el("button", "Stop the session", { id: "stop-session" });
  stop.addEventListener("click", () => {
    if (confirm(STOP_QUESTION)) send({ type: "answer", checkpoint: info.checkpoint, stop: true }, "stopping the session");
  });
  if (info.kind === "review") {
    const go = el("button", "Send these verdicts", { id: "send-answer" });
    go.addEventListener("click", () => {
      const answers = verdicts(info);
      send({ type: "answer", checkpoint: info.checkpoint, answers },
           answers.map((a) => `${DONE[a.verdict]} ${a.proposal_id}`).join(", "));
    });
    const all = el("button", "Approve all", { id: "approve-all" });
    all.addEventListener("click", () => send({ type: "answer", checkpoint: info.checkpoint,
      answers: info.proposals.map((p) => ({ proposal_id: p.id, verdict: "approve" })) }, "approved all"));
    actions.append(go, all, stop);
  } else {
    const on = el("button", "Carry on", { id: "carry-on" });
    on.addEventListener("click", () => send({ type: "answer", checkpoint: info.checkpoint, answers: [] }, "carrying on"));
    actions.append(on, stop);
  }
}

async function refreshCheckpoint() { showCheckpoint((await api("/api/checkpoint")).checkpoint); }
async function refresh() { try { await Promise.all([refreshStatus(), refreshCheckpoint()]); } catch (e) { /* next tick */ } }

// controls -------------------------------------------------------------------------------------------------------
$("pause").addEventListener("click", () => send({ type: "pause" }, "pausing after the current run"));
$("resume").addEventListener("click", () => send({ type: "resume" }, "resuming"));
$("stop").addEventListener("click", () => {
  if (confirm(STOP_QUESTION)) send({ type: "stop" }, "stopping after the current run");
});
$("abort").addEventListener("click", () => {
  if (confirm("Abort the run now? It is recorded as aborted by you.")) send({ type: "stop", abort: true }, "aborting the run");
});
$("budget").addEventListener("input", () => { budgetTyped = true; });
$("set-budget").addEventListener("click", () => {
  const text = $("budget").value.trim();
  budgetTyped = false;
  send({ type: "budget", experiments: /^\d+$/.test(text) ? Number(text) : text }, `budget set to ${text}`);
});
$("add").addEventListener("click", () => {
  const p = {};
  for (const input of $("add-fields").querySelectorAll("input")) p[input.name.slice(4)] = value(input.value);
  send({ type: "add", points: [p] }, `queued ${point(p)}`);
});
$("belief-variable").addEventListener("change", refreshBelief);

// events ---------------------------------------------------------------------------------------------------------
const QUIET = new Set(["variables", "objectives", "choices", "created", "at", "current", "last", "best", "planner_id"]);
function brief(v) {
  if (v === null || typeof v !== "object") return num(v);
  if (Array.isArray(v)) return v.map((x) => (x && typeof x === "object" && x.id ? x.id : brief(x))).join(",");
  if (Object.values(v).every((x) => typeof x !== "object" || x === null)) return point(v);
  return JSON.stringify(v).slice(0, 80);
}
function eventLine(e) {
  const when = new Date(e.time * 1000).toLocaleTimeString([], { hour12: false });
  const details = Object.entries(e.data || {})
    .filter(([k, v]) => !QUIET.has(k) && v !== null && v !== "")
    .map(([k, v]) => `${k}=${brief(v)}`).join(" ");
  return `${when} #${e.seq} ${e.kind} ${details}`;
}
function follow() {
  const source = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
  source.onmessage = (m) => {
    const e = JSON.parse(m.data);
    const list = $("events");
    list.prepend(el("li", eventLine(e), { "data-kind": e.kind }));
    while (list.children.length > 300) list.lastChild.remove();
    refresh();
  };
  // the session process ended (or none runs): look again in a while, from the start of the next process's events
  source.addEventListener("ended", () => { source.close(); refresh(); setTimeout(follow, 3000); });
  // refused (the server's event streams are all taken) or the server gone: try again in a while
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) setTimeout(follow, 10000); };
}

async function start() {
  session = await api("/api/session");
  if (session.ok === false) { say(session.error, false); return; }
  document.title = `closedloop ${session.name}`;
  $("results-csv").href = `/api/results.csv?token=${encodeURIComponent(token)}`;
  if (session.operator) {  // this address is one operator's own: the session records what is done here in their name
    byInput.value = session.operator;
    byInput.readOnly = true;
    byInput.title = "this page's address is yours: what you do here is recorded in your name";
  }
  $("name").textContent = session.name;
  $("session-id").textContent = session.session_id || "";
  const fields = $("add-fields");
  for (const [name, v] of Object.entries(session.variables)) {
    const lab = el("label", `${label(name)} `);
    lab.append(el("input", null, { type: "text", name: `add-${name}`,
      placeholder: v.values ? v.values.join("|") : range(v.bounds) }));
    fields.append(lab);
    if (v.bounds) $("belief-variable").append(el("option", label(name), { value: name }));
  }
  await refresh();
  follow();
  setInterval(refresh, 2000);
}
start();
