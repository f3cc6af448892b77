// The SPM dashboard: plain JavaScript against the v1 API, no build step, no external assets.
// Every string from the API is inserted as text (never as HTML). The page holds no credential:
// it exchanges the pasted key or JWT once for an httpOnly session cookie (POST /v1/session).
"use strict";

// Requests authenticated by the cookie that change something must carry this header (CSRF).
const CSRF = { "X-SPM-CSRF": "1" };
const SPANS = { day: 1, week: 7, month: 30, quarter: 91 };
const TREND_PERIODS = { day: 28, week: 12, month: 12, quarter: 8 };
const ICONS = { call: "☎", email: "✉", meeting: "◷", sms: "✆" };

const state = {
  reps: new Map(),
  selectedRep: null,
  selectedDeal: null,
  timelineCursor: null,
  stream: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "style") node.style.cssText = value; // CSSOM: allowed by the page's CSP
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

const svgNs = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}) {
  const node = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (response.status === 401) {
    signedOut("Your session ended: sign in again.");
    throw new ApiError(401, null);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return isoDay(date);
}

const PERIOD_DAYS = { day: 1, week: 7, month: 31, quarter: 92 };

function inProgress(granularity, periodStart) {
  if (!periodStart) return false;
  const today = isoDay(new Date());
  if (granularity === "month") return periodStart.slice(0, 7) === today.slice(0, 7);
  return addDays(periodStart, PERIOD_DAYS[granularity] ?? 1) > today;
}

function fmt(value) {
  if (value === null || value === undefined) return "–";
  return Number.isInteger(value) ? value.toLocaleString() : value.toLocaleString(undefined, { maximumFractionDigits: 1 });
}

const WHEN = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
function when(iso) {
  return WHEN.format(new Date(iso));
}

function repName(repId) {
  return (state.reps.get(repId) || {}).name || repId || "unassigned";
}

function clear(node, ...children) {
  node.replaceChildren(...children);
}

// ---------------------------------------------------------------- sign in / out

function showSignIn(message = "") {
  $("sign-in").hidden = false;
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in-error").textContent = message;
  setLive("offline", false);
}

function signedOut(message = "") {
  if (state.stream) state.stream.close();
  state.stream = null;
  showSignIn(message);
}

async function signOut() {
  signedOut();
  await fetch("/v1/session", { method: "DELETE", credentials: "same-origin", headers: CSRF }).catch(() => null);
}

async function signIn(credential) {
  const response = await fetch("/v1/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { Authorization: `Bearer ${credential}` },
  }).catch(() => null);
  if (!response || response.status !== 201) {
    const problem = response ? await response.json().catch(() => null) : null;
    const refused = response && (response.status === 401 || response.status === 403);
    showSignIn(refused ? "This key or token was refused." : new ApiError(response ? response.status : 0, problem).message);
    return;
  }
  $("api-key").value = "";
  await enter();
}

async function enter() {
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  await start();
}

// ---------------------------------------------------------------- loading

async function loadDirectory() {
  const teams = [];
  let cursor = null;
  do {
    const page = await api(`/v1/teams?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    teams.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  const select = $("team");
  clear(select, el("option", { value: "", text: "All teams" }), ...teams.map((t) => el("option", { value: t.team_id, text: t.name || t.team_id })));
  cursor = null;
  do {
    const page = await api(`/v1/reps?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    for (const rep of page.items) state.reps.set(rep.rep_id, rep);
    cursor = page.next_cursor;
  } while (cursor);
}

function boardQuery() {
  const params = new URLSearchParams({ period: $("period").value, metric: $("metric").value, limit: "25" });
  if ($("team").value) params.set("team_id", $("team").value);
  return params;
}

async function loadLeaderboard() {
  renderLeaderboard(await api(`/v1/leaderboard?${boardQuery()}`));
}

function renderLeaderboard(board) {
  const metricLabel = $("metric").selectedOptions[0].textContent;
  $("metric-head").textContent = metricLabel;
  const running = inProgress(board.granularity, board.period_start);
  $("period-label").textContent = board.period_start
    ? `${board.granularity} starting ${board.period_start}${running ? " (in progress)" : ""}`
    : "";
  const body = $("leaderboard").querySelector("tbody");
  const top = Math.max(1, ...board.entries.map((e) => e.value));
  clear(
    body,
    ...board.entries.map((entry) => {
      // A period still running is not compared with full past periods: it would read as a slump.
      const change = running ? null : entry.change_vs_baseline;
      const delta =
        change === null
          ? el("span", { class: "delta muted", text: "–" })
          : el("span", { class: `delta ${change >= 0 ? "up" : "down"}`, text: `${change >= 0 ? "▲" : "▼"} ${Math.abs(change * 100).toFixed(0)}%` });
      const row = el(
        "tr",
        { "data-rep": entry.rep_id, onclick: () => selectRep(entry.rep_id) },
        el("td", { class: "rank", text: String(entry.rank) }),
        el("td", {}, el("div", { text: entry.name || entry.rep_id }), el("div", { class: "bar" }, el("span", { style: `width:${(100 * entry.value) / top}%` }))),
        el("td", { class: "num", text: fmt(entry.value) }),
        el("td", {}, delta),
      );
      if (entry.rep_id === state.selectedRep) row.classList.add("selected");
      return row;
    }),
  );
  $("leaderboard-empty").hidden = board.entries.length > 0;
  if (!state.selectedRep && board.entries.length > 0) selectRep(board.entries[0].rep_id);
}

async function selectRep(repId) {
  state.selectedRep = repId;
  for (const row of document.querySelectorAll("#leaderboard tbody tr")) row.classList.toggle("selected", row.dataset.rep === repId);
  $("trend-rep").textContent = `· ${repName(repId)}`;
  $("funnel-scope").textContent = `· ${repName(repId)}, last 28 days`;
  await Promise.all([loadTrend(repId), loadFunnel(repId), loadRepDeals(repId)]);
}

async function loadTrend(repId) {
  const granularity = $("period").value;
  const today = isoDay(new Date());
  const from = addDays(today, -SPANS[granularity] * TREND_PERIODS[granularity]);
  const scores = await api(`/v1/reps/${encodeURIComponent(repId)}/scores?granularity=${granularity}&from=${from}&to=${today}`);
  renderTrend(scores.periods);
}

function renderTrend(periods) {
  const box = $("trend");
  if (periods.length === 0) {
    clear(box, el("p", { class: "empty", text: "No scored activity in this range." }));
    return;
  }
  const width = 520, height = 190, left = 34, right = 22, top = 12, bottom = 24;
  const max = Math.max(1, ...periods.map((p) => p.score));
  const x = (i) => left + (periods.length === 1 ? (width - left - right) / 2 : (i * (width - left - right)) / (periods.length - 1));
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "score trend", preserveAspectRatio: "none" });
  for (const tick of [0, max / 2, max]) {
    chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: y(tick), y2: y(tick) }));
    const label = svg("text", { class: "label", x: left - 6, y: y(tick) + 3, "text-anchor": "end" });
    label.textContent = fmt(Math.round(tick));
    chart.append(label);
  }
  const points = periods.map((p, i) => `${x(i).toFixed(1)},${y(p.score).toFixed(1)}`);
  chart.append(svg("path", { class: "area", d: `M${x(0)},${y(0)} L${points.join(" L")} L${x(periods.length - 1)},${y(0)} Z` }));
  chart.append(svg("path", { class: "line", d: `M${points.join(" L")}` }));
  const every = Math.ceil(periods.length / 7);
  periods.forEach((p, i) => {
    const dot = svg("circle", { class: "point", cx: x(i), cy: y(p.score), r: 3 });
    const title = svg("title");
    title.textContent = `${p.period_start}: ${fmt(p.score)}`;
    dot.append(title);
    chart.append(dot);
    if (i % every === 0 || i === periods.length - 1) {
      const label = svg("text", { class: "label", x: x(i), y: height - 6, "text-anchor": "middle" });
      label.textContent = p.period_start.slice(5);
      chart.append(label);
    }
  });
  clear(box, chart);
}

async function loadFunnel(repId) {
  const to = isoDay(new Date());
  const funnel = await api(`/v1/funnel?rep_id=${encodeURIComponent(repId)}&from=${addDays(to, -27)}&to=${to}`);
  const top = Math.max(1, funnel.steps[0].count);
  const rows = funnel.steps.map((step) =>
    el(
      "div",
      { class: "funnel-row" },
      el("span", { class: "name", text: step.step.replaceAll("_", " ") }),
      el("div", { class: "track" }, el("div", { class: "fill", style: `width:${Math.max(2, (100 * step.count) / top)}%`, text: fmt(step.count) })),
      el("span", { class: "ratio", text: step.ratio_to_previous === null ? "" : `${(step.ratio_to_previous * 100).toFixed(0)}%` }),
    ),
  );
  const foot = el("div", { class: "funnel-foot", text: `Dials per deal won: ${funnel.dials_per_deal_won === null ? "no deal won yet" : fmt(funnel.dials_per_deal_won)}` });
  clear($("funnel"), ...rows, foot);
}

async function loadRepDeals(repId) {
  const page = await api(`/v1/activities?rep_id=${encodeURIComponent(repId)}&limit=200`);
  const deals = [...new Set(page.items.map((a) => a.deal_id).filter(Boolean))].slice(0, 8);
  const chips = deals.map((dealId) => el("button", { class: "chip", "data-deal": dealId, text: dealId, onclick: () => selectDeal(dealId) }));
  clear($("rep-deals"), ...(chips.length ? [el("span", { class: "muted", text: "Recent deals:" }), ...chips] : []));
}

async function loadInsights() {
  const team = $("team").value ? `?team_id=${encodeURIComponent($("team").value)}` : "";
  const [atRisk, stale] = await Promise.all([api(`/v1/insights/at-risk-reps${team}`), api(`/v1/insights/stale-deals${team}`)]);
  renderInsights($("at-risk"), atRisk.items, "No rep is at risk.", (item) => selectRep(item.subject_id));
  renderInsights($("stale"), stale.items, "No stale deal.", (item) => selectDeal(item.subject_id));
}

function renderInsights(list, items, emptyText, onPick) {
  if (items.length === 0) {
    clear(list, el("li", { class: "empty", text: emptyText }));
    return;
  }
  clear(
    list,
    ...items.slice(0, 8).map((item) =>
      el(
        "li",
        { class: "clickable", "data-subject": item.subject_id, onclick: () => onPick(item) },
        el("div", { class: "title", text: item.subject_name || item.subject_id }),
        el("div", {}, ...item.reasons.map((reason) => el("span", { class: "tag", text: reason.replaceAll("_", " ") }))),
      ),
    ),
  );
}

async function selectDeal(dealId) {
  state.selectedDeal = dealId;
  state.timelineCursor = null;
  await loadTimeline(false);
}

async function loadTimeline(append) {
  const dealId = state.selectedDeal;
  const cursor = append && state.timelineCursor ? `&cursor=${state.timelineCursor}` : "";
  const page = await api(`/v1/deals/${encodeURIComponent(dealId)}/activities?limit=20${cursor}`);
  $("deal-name").textContent = `· ${page.deal.name || page.deal.deal_id} (${page.deal.stage || "no stage"})`;
  const s = page.summary;
  clear(
    $("deal-summary"),
    el("div", { class: "stat" }, el("b", { text: fmt(s.activities) }), "activities"),
    el("div", { class: "stat" }, el("b", { text: s.last_activity_at ? when(s.last_activity_at) : "–" }), "last activity"),
    el("div", { class: "stat" }, el("b", { text: fmt(s.engaged_contact_ids.length) }), "engaged contacts"),
    el("div", { class: "stat" }, el("b", { text: fmt(s.buyer_replies) }), "buyer replies"),
  );
  const items = page.items.map(timelineItem);
  const list = $("timeline");
  if (append) list.append(...items);
  else clear(list, ...(items.length ? items : [el("li", { class: "empty", text: "No activity attributed to this deal yet." })]));
  state.timelineCursor = page.next_cursor;
  $("timeline-more").hidden = !page.next_cursor;
}

function timelineItem(activity) {
  const runners = activity.runners_up.length
    ? `runners-up: ${activity.runners_up.map((r) => `${r.deal_id} (${fmt(r.score)})`).join(", ")}`
    : "no runner-up";
  const confidence = activity.confidence === null ? 0 : activity.confidence;
  return el(
    "li",
    { class: "item", "data-activity": activity.activity_id },
    el("span", { class: "icon", text: ICONS[activity.kind] || "•" }),
    el("span", { class: "when", text: when(activity.occurred_at) }),
    el(
      "div",
      {},
      el("div", { class: "what", text: `${activity.kind} · ${activity.direction} · ${activity.outcome.replaceAll("_", " ")} — ${repName(activity.rep_id)}` }),
      el("div", { class: "why" }, "rule ", el("code", { class: "rule-path", text: activity.rule_path || "n/a" }), ` · ${runners}`),
      activity.is_override ? el("div", { class: "override", text: "manual override" }) : null,
    ),
    el(
      "div",
      { class: "confidence" },
      el("span", { text: `confidence ${(confidence * 100).toFixed(0)}%` }),
      el("div", { class: "bar" }, el("span", { style: `width:${confidence * 100}%` })),
    ),
  );
}

// ---------------------------------------------------------------- live updates

function setLive(text, on) {
  $("live-text").textContent = text;
  $("live").classList.toggle("on", on);
  $("live").classList.toggle("off", !on);
}

function connectStream() {
  if (state.stream) state.stream.close();
  // Same origin: EventSource sends the session cookie, so no credential goes into the URL.
  const source = new EventSource(`/v1/stream/leaderboard?${boardQuery()}`);
  state.stream = source;
  source.onopen = () => setLive("live", true);
  source.onerror = () => {
    setLive("reconnecting…", false);
    // A refused reconnect closes the source for good: find out whether the session ended.
    if (source.readyState === EventSource.CLOSED) api("/v1/session").catch(() => null);
  };
  // The server re-checks the session and ends the stream once it is revoked or expired.
  source.addEventListener("revoked", () => {
    source.close();
    signedOut("Your session ended: sign in again.");
  });
  source.addEventListener("leaderboard", (event) => {
    setLive("live", true);
    renderLeaderboard(JSON.parse(event.data));
    $("live").classList.add("flash");
    setTimeout(() => $("live").classList.remove("flash"), 400);
  });
}

async function refreshBoard() {
  await Promise.all([loadLeaderboard(), loadInsights()]);
  connectStream();
  if (state.selectedRep) await selectRep(state.selectedRep);
}

async function start() {
  try {
    await loadDirectory();
    await refreshBoard();
  } catch (error) {
    if (error.status !== 401) console.error(error);
  }
}

// ---------------------------------------------------------------- wiring

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("api-key").value.trim());
});
$("sign-out").addEventListener("click", () => signOut());
for (const id of ["team", "period", "metric"]) $(id).addEventListener("change", () => refreshBoard());
$("timeline-more").addEventListener("click", () => loadTimeline(true));

// A session cookie from an earlier sign-in (another tab, a reload) is used as is.
fetch("/v1/session", { credentials: "same-origin" })
  .then((response) => (response.ok ? enter() : showSignIn()))
  .catch(() => showSignIn());
