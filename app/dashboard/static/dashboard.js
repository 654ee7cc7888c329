// The dashboard: plain JavaScript on the service's own JSON API, charts drawn as inline SVG.
// The read key lives in sessionStorage (this tab, until it closes) and goes only to this origin.
"use strict";

const KEY = "returns-router.read-key";
const PALETTE = ["#0b5cad", "#a4161a", "#1b6e2d", "#7a4e00", "#5b2a86", "#006d77", "#4a4a4a"];
const $ = (selector) => document.querySelector(selector);
let explorerCursor = null;
let countdowns = [];

function escapeText(value) {
  const span = document.createElement("span");
  span.textContent = value == null ? "" : String(value);
  return span.innerHTML;
}

function say(message, isError = false) {
  const status = $("#status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

async function api(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== "" && value != null) url.searchParams.set(name, value);
  }
  const response = await fetch(url, { headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY)}` } });
  if (response.status === 401 || response.status === 403) {
    sessionStorage.removeItem(KEY);
    showKeyForm();
    throw new Error("The key was refused: it is unknown, revoked, or lacks the read scope.");
  }
  if (!response.ok) {
    let detail = `${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(`The service answered ${detail}`);
  }
  return response.json();
}

// A rate as the API gives it ("0.4123", four decimals at most) as a percentage, exactly.
function percent(rate) {
  const [whole, fraction = ""] = String(rate).split(".");
  const digits = fraction.padEnd(4, "0");
  return `${Number(whole) * 100 + Number(digits.slice(0, 2))}.${digits.slice(2, 4)}%`;
}

function money(list) {
  if (!list || list.length === 0) return "–";
  return list.map((m) => `${Number(m.amount).toLocaleString(undefined, { minimumFractionDigits: 2 })} ${m.currency}`).join(" + ");
}

function cell(value, numeric = false, extraClass = "") {
  const classes = [numeric ? "num" : "", extraClass].filter(Boolean).join(" ");
  return `<td${classes ? ` class="${classes}"` : ""}>${escapeText(value)}</td>`;
}

// --- Today's queues ------------------------------------------------------------------------

async function loadQueues() {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const since = midnight.toISOString();
  let items = [];
  let cursor = null;
  for (let page = 0; page < 10; page += 1) {
    const answer = await api("/v1/decisions", { created_after: since, limit: 200, cursor });
    items = items.concat(answer.items);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  const now = Date.now();
  const queues = new Map();
  for (const decision of items) {
    const name = decision.queue.name;
    const due = Date.parse(decision.queue.sla_due_at);
    const queue = queues.get(name) || { name, total: 0, ahead: 0, past: 0, late: 0, next: null };
    queue.total += 1;
    if (due > now) {
      queue.ahead += 1;
      if (queue.next === null || due < queue.next) queue.next = due;
    } else {
      queue.past += 1;
    }
    if (due <= Date.parse(decision.created_at)) queue.late += 1;
    queues.set(name, queue);
  }
  const table = $("#queues");
  table.dataset.since = since;
  const rows = [...queues.values()].sort((a, b) => a.name.localeCompare(b.name));
  table.querySelector("tbody").innerHTML = rows.length === 0
    ? `<tr><td colspan="6">No decision yet today.</td></tr>`
    : rows.map((q) => `<tr data-queue="${escapeText(q.name)}">${cell(q.name)}${cell(q.total, true)}${cell(q.ahead, true)}`
      + `${cell(q.past, true, q.past ? "breached" : "")}${cell(q.late, true, q.late ? "breached" : "")}`
      + `<td class="num" data-due="${q.next ?? ""}"></td></tr>`).join("");
  countdowns = [...table.querySelectorAll("td[data-due]")];
  tick();
}

function tick() {
  const now = Date.now();
  for (const element of countdowns) {
    const due = Number(element.dataset.due);
    if (!due) { element.textContent = "none due"; continue; }
    const seconds = Math.max(0, Math.round((due - now) / 1000));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    element.textContent = `in ${h}h ${String(m).padStart(2, "0")}m ${String(s).padStart(2, "0")}s`;
    element.classList.toggle("breached", seconds < 3600);
  }
}

// --- Charts --------------------------------------------------------------------------------

function stackedBars(target, days, series, label) {
  const width = 640, height = 240, left = 44, bottom = 34, top = 10;
  const totals = days.map((day) => series.reduce((sum, name) => sum + (day.counts[name] || 0), 0));
  const max = Math.max(1, ...totals);
  const step = (width - left - 8) / days.length;
  const scale = (value) => (value / max) * (height - top - bottom);
  let bars = "";
  days.forEach((day, index) => {
    let y = height - bottom;
    series.forEach((name, s) => {
      const value = day.counts[name] || 0;
      if (!value) return;
      const h = scale(value);
      y -= h;
      bars += `<rect x="${(left + index * step + 2).toFixed(1)}" y="${y.toFixed(1)}" width="${(step - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[s % PALETTE.length]}"><title>${escapeText(`${day.day} ${name}: ${value}`)}</title></rect>`;
    });
    if (index % 2 === 0) {
      bars += `<text x="${(left + index * step + step / 2).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle">${escapeText(day.day.slice(5))}</text>`;
    }
  });
  const axis = `<line x1="${left}" y1="${height - bottom}" x2="${width - 4}" y2="${height - bottom}" stroke="#767676"/>`
    + `<text x="${left - 6}" y="${top + 10}" text-anchor="end">${max}</text><text x="${left - 6}" y="${height - bottom}" text-anchor="end">0</text>`;
  const summary = series.map((name) => `${name} ${days.reduce((sum, d) => sum + (d.counts[name] || 0), 0)}`).join(", ");
  target.innerHTML = `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeText(`${label}: ${summary}`)}">${axis}${bars}</svg>`
    + `<div class="legend">${series.map((name, s) => `<span><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="${PALETTE[s % PALETTE.length]}"/></svg> ${escapeText(name)}</span>`).join("")}</div>`;
}

function rateBars(target, groups, field, label) {
  const rows = groups.filter((g) => g.decisions > 0);
  const width = 640, row = 22, left = 230, height = Math.max(row, rows.length * row) + 8;
  const max = Math.max(0.0001, ...rows.map((g) => Number(g[field])));
  const bars = rows.map((g, index) => {
    const value = Number(g[field]);
    const w = (value / max) * (width - left - 70);
    const y = 4 + index * row;
    return `<text x="${left - 6}" y="${y + 14}" text-anchor="end">${escapeText(g.key)}</text>`
      + `<rect x="${left}" y="${y + 3}" width="${Math.max(w, 1).toFixed(1)}" height="${row - 8}" fill="${PALETTE[field === "claim_rate" ? 1 : 0]}" data-key="${escapeText(g.key)}" data-value="${escapeText(g[field])}"><title>${escapeText(`${g.key}: ${percent(g[field])}`)}</title></rect>`
      + `<text x="${left + w + 6}" y="${y + 14}">${percent(g[field])}</text>`;
  }).join("");
  target.innerHTML = rows.length === 0
    ? "<p>No decision in this period.</p>"
    : `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeText(label)}">${bars}</svg>`;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

async function loadVolume() {
  const days = [];
  const today = new Date();
  today.setUTCHours(0, 0, 0, 0);
  for (let back = 13; back >= 0; back -= 1) {
    const start = new Date(today.getTime() - back * 86400000);
    days.push({ start, end: new Date(start.getTime() + 86400000), day: isoDay(start) });
  }
  for (const [groupBy, target, label] of [
    ["channel", "#by-channel", "Decisions per day by channel"],
    ["classification", "#by-classification", "Decisions per day by classification"],
  ]) {
    const answers = await Promise.all(days.map((d) => api("/v1/stats/decisions", {
      group_by: groupBy, created_after: d.start.toISOString(), created_before: d.end.toISOString(),
    })));
    const series = new Set();
    const counted = days.map((d, index) => {
      const counts = {};
      for (const g of answers[index].groups) { counts[g.key] = g.count; series.add(g.key); }
      return { day: d.day, counts };
    });
    stackedBars($(target), counted, [...series].sort(), label);
  }
}

async function loadOutcomes() {
  const [byRule, byPolicy] = await Promise.all([
    api("/v1/stats/outcomes", { group_by: "rule" }),
    api("/v1/stats/outcomes", { group_by: "policy" }),
  ]);
  const rules = byRule.groups;
  rateBars($("#retention-by-rule"), [...rules].sort((a, b) => Number(b.retention_rate) - Number(a.retention_rate)),
    "retention_rate", "Retention rate by rule");
  rateBars($("#claims-by-rule"), [...rules].sort((a, b) => Number(b.claim_rate) - Number(a.claim_rate)),
    "claim_rate", "Claim rate by rule");
  $("#rules tbody").innerHTML = rules.map((g) => `<tr data-key="${escapeText(g.key)}">${cell(g.key)}`
    + `${cell(g.decisions, true)}${cell(g.resolved, true)}${cell(g.retained, true)}${cell(g.refunded, true)}`
    + `${cell(g.returnless, true)}${cell(g.claims, true)}${cell(percent(g.retention_rate), true)}`
    + `${cell(percent(g.claim_rate), true)}</tr>`).join("") || `<tr><td colspan="9">No decision yet.</td></tr>`;
  $("#policies tbody").innerHTML = byPolicy.groups.map((g) => `<tr data-key="${escapeText(g.key)}">${cell(g.key)}`
    + `${cell(g.decisions, true)}${cell(g.resolved, true)}${cell(percent(g.retention_rate), true)}`
    + `${cell(percent(g.claim_rate), true)}${cell(percent(g.sla_met_rate), true)}`
    + `${cell(money(g.refunded_amounts), true)}${cell(money(g.retained_amounts), true)}</tr>`).join("")
    || `<tr><td colspan="8">No decision yet.</td></tr>`;
}

// --- Explorer ------------------------------------------------------------------------------

async function loadDecisions(append = false) {
  const filters = Object.fromEntries(new FormData($("#filters")).entries());
  const answer = await api("/v1/decisions", { ...filters, limit: 25, cursor: append ? explorerCursor : null });
  explorerCursor = answer.next_cursor;
  const rows = answer.items.map((d) => `<tr data-id="${escapeText(d.decision_id)}">`
    + `${cell(new Date(d.created_at).toLocaleString())}${cell(d.channel)}${cell(d.order.order_ref)}${cell(d.reason)}`
    + `${cell(d.classification)}${cell(d.queue.name)}${cell(d.policy.eligible ? "yes" : "no")}`
    + `<td><button type="button" class="open" data-id="${escapeText(d.decision_id)}" aria-label="Open decision ${escapeText(d.order.order_ref)}">Open</button></td></tr>`).join("");
  const body = $("#decisions tbody");
  body.innerHTML = append ? body.innerHTML + rows : (rows || `<tr><td colspan="8">No decision matches.</td></tr>`);
  $("#more").hidden = !explorerCursor;
}

async function openDecision(id) {
  const d = await api(`/v1/decisions/${encodeURIComponent(id)}`);
  const outcome = d.outcome;
  const outcomeHtml = outcome
    ? `<dl data-testid="outcome"><dt>Status</dt><dd>${escapeText(outcome.status)}</dd>`
      + `<dt>Refunded</dt><dd>${escapeText(outcome.refunded ? money([outcome.refunded]) : "–")}</dd>`
      + `<dt>Retained</dt><dd>${escapeText(outcome.retained ? money([outcome.retained]) : "–")}</dd>`
      + `<dt>In policy</dt><dd>${escapeText(outcome.in_policy == null ? "not reported" : (outcome.in_policy ? "yes" : "no"))}</dd>`
      + `<dt>A-to-z claim</dt><dd>${outcome.a_to_z_claim ? "yes" : "no"}</dd>`
      + `<dt>Resolved</dt><dd>${escapeText(outcome.resolved_at || "not yet")}</dd>`
      + `<dt>Source</dt><dd>${escapeText(outcome.source)}</dd><dt>Because</dt><dd>${escapeText(outcome.because || "")}</dd></dl>`
    : `<p data-testid="outcome">Nothing known yet of what happened.</p>`;
  const detail = $("#detail");
  detail.innerHTML = `<h3 id="detail-title">Decision ${escapeText(d.decision_id)}</h3>`
    + `<p>${escapeText(d.channel)} order ${escapeText(d.order.order_ref)}, ${escapeText(d.classification)}, `
    + `policy ${escapeText(d.policy.id)}@${escapeText(d.policy.version)}, queue ${escapeText(d.queue.name)} `
    + `(due ${escapeText(new Date(d.queue.sla_due_at).toLocaleString())}).</p>`
    + `<h4>Explanation</h4><ol data-testid="explanation">${d.explanation.map((step) => `<li><code>${escapeText(step.rule)}</code>: ${escapeText(step.result)}</li>`).join("")}</ol>`
    + `<h4>Reply (${escapeText(d.template.locale)})</h4><p><strong>${escapeText(d.template.subject)}</strong></p><pre>${escapeText(d.template.body)}</pre>`
    + `<h4>Outcome</h4>${outcomeHtml}`
    + `<h4>Actions</h4>${d.actions.length ? `<ul>${d.actions.map((a) => `<li>${escapeText(`${a.kind} ${a.status}`)}</li>`).join("")}</ul>` : "<p>None taken.</p>"}`;
  detail.hidden = false;
  detail.focus();
}

// --- Wiring --------------------------------------------------------------------------------

function showKeyForm() {
  $("#key-form").hidden = false;
  $("#panels").hidden = true;
  $("#session").hidden = true;
}

async function loadAll() {
  $("#key-form").hidden = true;
  $("#panels").hidden = false;
  $("#session").hidden = false;
  say("Loading…");
  try {
    await Promise.all([loadQueues(), loadVolume(), loadOutcomes(), loadDecisions()]);
    say(`Updated ${new Date().toLocaleTimeString()}.`);
    document.body.dataset.loaded = "true";
  } catch (error) {
    say(error.message, true);
  }
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("#key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $("#key").value = "";
  loadAll();
});
$("#forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); showKeyForm(); say("The key is forgotten."); });
$("#refresh").addEventListener("click", loadAll);
$("#filters").addEventListener("submit", (event) => {
  event.preventDefault();
  loadDecisions().catch((error) => say(error.message, true));
});
$("#more").addEventListener("click", () => loadDecisions(true).catch((error) => say(error.message, true)));
$("#decisions").addEventListener("click", (event) => {
  const button = event.target.closest("button.open");
  if (button) openDecision(button.dataset.id).catch((error) => say(error.message, true));
});
setInterval(tick, 1000);
if (sessionStorage.getItem(KEY)) loadAll(); else showKeyForm();
