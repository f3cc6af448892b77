// The SPM dashboard: plain JavaScript against the v1 API, no build step, no external assets.
// Every string from the API is inserted as text (never as HTML). The page holds no credential:
// it exchanges the pasted key or JWT once for an httpOnly session cookie (POST /v1/session).
"use strict";

// Requests authenticated by the cookie that change something must carry this header (CSRF).
const CSRF = { "X-SPM-CSRF": "1" };
// Periods drawn in a trend, and the trailing periods a baseline is the mean of (docs/metrics.md).
const TREND_PERIODS = { day: 28, week: 12, month: 12, quarter: 8 };
const BASELINE_PERIODS = 8;
const MIN_BASELINE_PERIODS = 4;
const ICONS = { call: "☎", email: "✉", meeting: "◷", sms: "✆" };
const FIGURES = [
  ["score", "Score"],
  ["activities", "Activities"],
  ["dials", "Dials"],
  ["connects", "Connects"],
  ["conversations", "Conversations"],
  ["emails_sent", "Emails sent"],
  ["meetings_held", "Meetings held"],
];

const state = {
  admin: false,
  reps: new Map(),
  teams: new Map(),
  deals: new Map(),
  calendar: null, // the GET /v1/periods answer for the period shown
  chosen: false, // a period was picked (else each granularity shows its last complete period)
  board: null,
  previousBoard: null,
  selectedRep: null,
  selectedDeal: null,
  selectedActivity: null,
  timelineCursor: null,
  stream: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "style") node.style.cssText = value; // CSSOM: allowed by the page's CSP
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
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

async function request(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    signedOut("Your session ended: sign in again.");
    throw new ApiError(401, null);
  }
  return response;
}

async function api(path, options = {}) {
  const response = await request(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function showError(error) {
  if (error && error.status === 401) return;
  console.error(error);
  $("error").textContent = error ? error.message : "";
}

// ---------------------------------------------------------------- dates and numbers

function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

function addMonths(day, months) {
  const [year, month] = day.split("-").map(Number);
  const index = year * 12 + month - 1 + months;
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}-01`;
}

// The start of the period ``count`` periods before the one starting on ``start`` (quarters and
// months start on the first of a month, weeks on a Monday).
function periodsBefore(start, granularity, count) {
  if (granularity === "day") return addDays(start, -count);
  if (granularity === "week") return addDays(start, -7 * count);
  return addMonths(start, -(granularity === "month" ? 1 : 3) * count);
}

function fmt(value) {
  if (value === null || value === undefined) return "–";
  return Number.isInteger(value) ? value.toLocaleString("en") : value.toLocaleString("en", { maximumFractionDigits: 1 });
}

function score(value) {
  return value === null || value === undefined ? "–" : value.toFixed(2);
}

const WHEN = new Intl.DateTimeFormat("en", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
function when(iso) {
  return WHEN.format(new Date(iso));
}

// A relative change as a badge: ▲ up, ▼ down, and a 0 % (as shown, after rounding) is neutral.
function delta(change, title) {
  if (change === null || change === undefined || !Number.isFinite(change)) {
    return el("span", { class: "delta none", text: "–", title: title || "no comparison" });
  }
  const percent = Math.round(change * 100);
  const attrs = { title, "data-change": String(change) };
  if (percent === 0) return el("span", { ...attrs, class: "delta flat", text: "= 0%" });
  return el("span", { ...attrs, class: `delta ${percent > 0 ? "up" : "down"}`, text: `${percent > 0 ? "▲" : "▼"} ${Math.abs(percent)}%` });
}

function relative(current, before) {
  if (current === null || current === undefined || before === null || before === undefined || before === 0) return null;
  return (current - before) / before;
}

function repName(repId) {
  return (state.reps.get(repId) || {}).name || repId || "unassigned";
}

function dealName(dealId) {
  return state.deals.get(dealId) || dealId;
}

function clear(node, ...children) {
  node.replaceChildren(...children.filter((child) => child !== null && child !== undefined));
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
  if (state.stream) state.stream.close();
  state.stream = null;
  // The session ends on the server before the page says so.
  await fetch("/v1/session", { method: "DELETE", credentials: "same-origin", headers: CSRF }).catch(() => null);
  signedOut();
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
  await enter(await response.json());
}

async function enter(session) {
  state.admin = session.scopes.includes("admin");
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  await start();
}

// ---------------------------------------------------------------- CSV downloads

async function download(path, filename) {
  try {
    const response = await request(path, { headers: { Accept: "text/csv" } });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------- directory and team tree

async function pages(path) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(`${path}${path.includes("?") ? "&" : "?"}limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

async function loadDirectory() {
  const [teams, reps] = await Promise.all([pages("/v1/teams"), pages("/v1/reps")]);
  state.teams = new Map(teams.map((t) => [t.team_id, t]));
  state.reps = new Map(reps.map((r) => [r.rep_id, r]));
  const selected = $("team").value;
  clear($("team"), el("option", { value: "", text: "All teams" }), ...teams.map((t) => el("option", { value: t.team_id, text: t.name || t.team_id })));
  $("team").value = selected;
  renderTree();
}

function renderTree() {
  const teams = [...state.teams.values()];
  const children = (parentId) => teams.filter((t) => t.parent_id === parentId);
  const roots = teams.filter((t) => !t.parent_id || !state.teams.has(t.parent_id));
  const branch = (team, seen) => {
    const below = seen.has(team.team_id) ? [] : children(team.team_id);
    const next = new Set(seen).add(team.team_id);
    const node = el(
      "details",
      { "data-team": team.team_id },
      el("summary", { "data-team": team.team_id, text: team.name || team.team_id }),
      ...below.map((child) => branch(child, next)),
      below.length || team.member_ids.length === 0
        ? null
        : el(
            "ul",
            { class: "tree-reps" },
            ...team.member_ids.map((repId) =>
              el("li", {}, el("button", { type: "button", class: "tree-rep", "data-rep": repId, text: repName(repId), onclick: () => selectRep(repId) })),
            ),
          ),
    );
    node.addEventListener("toggle", () => {
      if (node.open) selectTeam(team.team_id);
    });
    return node;
  };
  clear($("tree"), ...(roots.length ? roots.map((t) => branch(t, new Set())) : [el("p", { class: "empty", text: "No team yet." })]));
}

async function selectTeam(teamId) {
  if ($("team").value === teamId) return loadTeamTrend();
  $("team").value = teamId;
  await refreshBoard().catch(showError);
}

// ---------------------------------------------------------------- periods

function granularity() {
  return $("period").value;
}

async function loadPeriod(day) {
  const params = new URLSearchParams({ granularity: granularity() });
  if (day) params.set("date", day);
  state.calendar = await api(`/v1/periods?${params}`);
  const { period, next, current } = state.calendar;
  $("period-date").value = period.start;
  $("period-date").max = current.end ? addDays(current.end, -1) : "";
  $("period-next").disabled = next === null;
  $("period-current").disabled = period.in_progress;
  const range = granularity() === "day" ? period.start : `${period.start} – ${addDays(period.end, -1)}`;
  clear(
    $("period-label"),
    el("b", { text: period.label }),
    ` ${range} `,
    period.in_progress ? el("span", { class: "badge live-badge", text: "in progress" }) : el("span", { class: "badge", text: "complete" }),
  );
  document.body.classList.toggle("in-progress", period.in_progress);
}

async function goToPeriod(day, chosen = true) {
  state.chosen = state.chosen || (chosen && day !== null);
  try {
    await loadPeriod(day);
    await refreshBoard();
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------- leaderboard

function boardParams(day) {
  const params = new URLSearchParams({ period: granularity(), metric: $("metric").value, limit: "100" });
  if (day) params.set("date", day);
  if ($("team").value) params.set("team_id", $("team").value);
  return params;
}

// The leaderboard of exactly the period starting on ``start``: the API answers the latest
// period with data on or before the date, so an empty period reads as no entries.
async function boardOf(start) {
  const board = await api(`/v1/leaderboard?${boardParams(start)}`);
  return board.period_start === start ? board : { ...board, period_start: start, entries: [] };
}

async function loadLeaderboard() {
  const { period, previous } = state.calendar;
  const [board, before] = await Promise.all([boardOf(period.start), boardOf(previous.start)]);
  state.previousBoard = before;
  renderLeaderboard(board);
}

function renderLeaderboard(board) {
  state.board = board;
  $("metric-head").textContent = $("metric").selectedOptions[0].textContent;
  const running = state.calendar.period.in_progress;
  const before = new Map((state.previousBoard ? state.previousBoard.entries : []).map((e) => [e.rep_id, e.value]));
  const top = Math.max(1, ...board.entries.map((e) => e.value));
  const body = $("leaderboard").querySelector("tbody");
  clear(
    body,
    ...board.entries.map((entry) => {
      // A period still running is not compared with the baseline of full periods: it would read as a slump.
      const baseline = running ? null : entry.change_vs_baseline;
      const previous = before.has(entry.rep_id) ? before.get(entry.rep_id) : null;
      const row = el(
        "tr",
        { "data-rep": entry.rep_id, tabindex: "0", onclick: () => selectRep(entry.rep_id), onkeydown: (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), selectRep(entry.rep_id)) },
        el("td", { class: "rank", text: String(entry.rank) }),
        el(
          "td",
          {},
          el(
            "div",
            { text: entry.name || entry.rep_id },
            entry.activities === 0 ? el("span", { class: "badge", text: "no activity" }) : null,
            entry.insufficient_data ? el("span", { class: "badge", title: "too few periods for a baseline", text: "new" }) : null,
            entry.goal ? el("span", { class: "badge", text: `${Math.round(entry.goal.attainment * 100)}% of goal` }) : null,
          ),
          el("div", { class: "bar", "aria-hidden": "true" }, el("span", { style: `width:${(100 * entry.value) / top}%` })),
        ),
        el("td", { class: "num", text: fmt(entry.value), "data-value": String(entry.value) }),
        el("td", { class: "vs-previous" }, delta(relative(entry.value, previous), previous === null ? "no figure in the previous period" : `previous period: ${fmt(previous)}`)),
        el("td", { class: "vs-baseline" }, delta(baseline, running ? "period in progress" : "against the rep's trailing baseline")),
      );
      if (entry.rep_id === state.selectedRep) row.classList.add("selected");
      return row;
    }),
  );
  $("leaderboard-empty").hidden = board.entries.length > 0;
  // The API answers the latest period with data on or before a date: an empty period has nothing to export.
  $("download-leaderboard").disabled = board.entries.length === 0;
  if (!state.selectedRep && board.entries.length > 0) selectRep(board.entries[0].rep_id);
}

// ---------------------------------------------------------------- a rep: figures, trend, deals

function seriesRange() {
  const start = state.calendar.period.start;
  return { from: periodsBefore(start, granularity(), TREND_PERIODS[granularity()] + BASELINE_PERIODS - 1), to: start };
}

function scoresPath(kind, id) {
  const { from, to } = seriesRange();
  return `/v1/${kind}/${encodeURIComponent(id)}/scores?granularity=${granularity()}&from=${from}&to=${to}`;
}

async function selectRep(repId) {
  state.selectedRep = repId;
  for (const row of document.querySelectorAll("#leaderboard tbody tr")) row.classList.toggle("selected", row.dataset.rep === repId);
  for (const button of document.querySelectorAll(".tree-rep")) button.classList.toggle("selected", button.dataset.rep === repId);
  $("trend-rep").textContent = `· ${repName(repId)}`;
  $("rep-figures").dataset.rep = repId;
  $("download-scores").disabled = false;
  $("download-funnel").disabled = false;
  try {
    await Promise.all([loadRepScores(repId), loadFunnel(repId), loadRepDeals(repId)]);
  } catch (error) {
    showError(error);
  }
}

async function loadRepScores(repId) {
  const scores = await api(scoresPath("reps", repId));
  if (repId !== state.selectedRep) return;
  const { period, previous } = state.calendar;
  const byStart = new Map(scores.periods.map((p) => [p.period_start, p]));
  renderFigures(byStart.get(period.start), byStart.get(previous.start), scores.periods.filter((p) => p.period_start < period.start && p.counts.activities > 0).slice(-BASELINE_PERIODS));
  renderGoals(byStart.get(period.start));
  renderTrend($("trend"), scores.periods, "rep score trend");
}

function figure(period, key) {
  if (!period) return 0;
  return key === "score" ? period.score : period.counts[key] || 0;
}

function renderFigures(current, previous, trailing) {
  const running = state.calendar.period.in_progress;
  const rows = FIGURES.map(([key, label]) => {
    const value = figure(current, key);
    let baselineChange = null;
    if (key === "score" && current) baselineChange = current.change_vs_baseline;
    else if (trailing.length >= MIN_BASELINE_PERIODS) {
      const mean = trailing.reduce((sum, p) => sum + figure(p, key), 0) / trailing.length;
      baselineChange = relative(value, mean);
    }
    return el(
      "tr",
      { "data-figure": key },
      el("th", { scope: "row", text: label }),
      el("td", { class: "num", text: fmt(value), "data-value": String(value) }),
      el("td", {}, delta(relative(value, previous ? figure(previous, key) : null), "against the previous period")),
      el("td", {}, delta(running ? null : baselineChange, running ? "period in progress" : "against the rep's trailing baseline")),
    );
  });
  clear(
    $("rep-figures"),
    el("caption", { class: "visually-hidden", text: "The rep's figures in the chosen period" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Figure" }), el("th", { scope: "col", class: "num", text: "Value" }), el("th", { scope: "col", text: "vs. prev." }), el("th", { scope: "col", text: "vs. baseline" }))),
    el("tbody", {}, ...rows),
  );
}

// Goal attainment and pace, when the API serves goals (``goals`` on a score period).
function renderGoals(period) {
  const goals = period && Array.isArray(period.goals) ? period.goals : [];
  $("goals").hidden = goals.length === 0;
  clear(
    $("goals"),
    goals.length ? el("h3", { text: "Goals" }) : null,
    ...goals.map((goal) =>
      el(
        "div",
        { class: "goal", "data-metric": goal.metric },
        el("span", { class: "name", text: String(goal.metric || "").replaceAll("_", " ") }),
        el("span", { text: `${fmt(goal.actual)} of ${fmt(goal.target)}` }),
        el("b", { text: `${Math.round(goal.attainment * 100)}%` }),
        goal.complete || goal.pace === null || goal.pace === undefined
          ? null
          : el("span", { class: goal.pace >= 1 ? "delta up" : "delta down", text: `pace ${Math.round(goal.pace * 100)}% · ${goal.days_left} day${goal.days_left === 1 ? "" : "s"} left` }),
      ),
    ),
  );
}

// The trend over the last TREND_PERIODS periods up to the one shown, one slot per period: a
// period without data is a gap, not squeezed out, so the x axis always reads as time; a rostered
// rep's silent period the API lists with zeros is drawn at 0.
function trendSlots() {
  const count = TREND_PERIODS[granularity()];
  const start = state.calendar.period.start;
  return Array.from({ length: count }, (_, i) => periodsBefore(start, granularity(), count - 1 - i));
}

function renderTrend(box, periods, label) {
  const slots = trendSlots();
  const byStart = new Map(periods.map((p) => [p.period_start, p]));
  const width = 520, height = 190, left = 34, right = 22, top = 12, bottom = 24;
  const max = Math.max(1, ...periods.map((p) => p.score));
  const x = (i) => left + (i * (width - left - right)) / Math.max(1, slots.length - 1);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const present = slots.filter((start) => byStart.has(start) && byStart.get(start).counts.activities > 0).length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${label}: ${present} of ${slots.length} periods with data`, preserveAspectRatio: "none", "data-slots": slots.length });
  for (const tick of [0, max / 2, max]) {
    chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: y(tick), y2: y(tick) }));
    const text = svg("text", { class: "label", x: left - 6, y: y(tick) + 3, "text-anchor": "end" });
    text.textContent = fmt(Math.round(tick));
    chart.append(text);
  }
  let path = "";
  let previous = false;
  slots.forEach((start, i) => {
    const p = byStart.get(start);
    if (p) path += `${previous ? " L" : " M"}${x(i).toFixed(1)},${y(p.score).toFixed(1)}`;
    previous = Boolean(p);
  });
  if (path) chart.append(svg("path", { class: "line", d: path.trim() }));
  const every = Math.ceil(slots.length / 7);
  const chosen = state.calendar.period.start;
  slots.forEach((start, i) => {
    const p = byStart.get(start);
    if (p) {
      const dot = svg("circle", { class: start === chosen ? "point chosen" : "point", cx: x(i), cy: y(p.score), r: start === chosen ? 5 : 3, "data-period": start });
      const title = svg("title");
      title.textContent = `${start}: ${fmt(p.score)}`;
      dot.append(title);
      chart.append(dot);
    }
    if (i % every === 0 || i === slots.length - 1) {
      const text = svg("text", { class: "label slot", x: x(i), y: height - 6, "text-anchor": "middle", "data-period": start });
      text.textContent = granularity() === "day" || granularity() === "week" ? start.slice(5) : start.slice(0, 7);
      chart.append(text);
    }
  });
  clear(box, chart);
}

function funnelPath(repId, period = state.calendar.period) {
  return `/v1/funnel?rep_id=${encodeURIComponent(repId)}&from=${period.start}&to=${addDays(period.end, -1)}`;
}

async function loadFunnel(repId) {
  const [funnel, before] = await Promise.all([api(funnelPath(repId)), api(funnelPath(repId, state.calendar.previous))]);
  if (repId !== state.selectedRep) return;
  $("funnel-scope").textContent = `· ${repName(repId)}, ${state.calendar.period.label}`;
  const previous = new Map(before.steps.map((step) => [step.step, step.count]));
  const top = Math.max(1, funnel.steps[0].count);
  const rows = funnel.steps.map((step) =>
    el(
      "div",
      { class: "funnel-row", "data-step": step.step, "data-count": String(step.count) },
      el("span", { class: "name", text: step.step.replaceAll("_", " ") }),
      el("div", { class: "track" }, el("div", { class: "fill", style: `width:${Math.max(2, (100 * step.count) / top)}%`, text: fmt(step.count) })),
      el("span", { class: "ratio", text: step.ratio_to_previous === null ? "" : `${(step.ratio_to_previous * 100).toFixed(0)}%` }),
      delta(relative(step.count, previous.get(step.step) ?? null), `previous period: ${fmt(previous.get(step.step))}`),
    ),
  );
  const foot = el("div", { class: "funnel-foot", text: `Dials per deal won: ${funnel.dials_per_deal_won === null ? "no deal won yet" : fmt(funnel.dials_per_deal_won)} · ratios: step over the step above · badges: against the previous period` });
  clear($("funnel"), ...rows, foot);
}

async function nameDeals(dealIds) {
  const unknown = [...new Set(dealIds.filter((id) => id && !state.deals.has(id)))];
  for (let i = 0; i < unknown.length; i += 100) {
    const page = await api(`/v1/deals?limit=100&ids=${encodeURIComponent(unknown.slice(i, i + 100).join(","))}`);
    for (const deal of page.items) state.deals.set(deal.deal_id, deal.name || deal.deal_id);
  }
}

async function loadRepDeals(repId) {
  const page = await api(`/v1/activities?rep_id=${encodeURIComponent(repId)}&limit=200`);
  const deals = [...new Set(page.items.map((a) => a.deal_id).filter(Boolean))].slice(0, 8);
  await nameDeals(deals);
  if (repId !== state.selectedRep) return;
  const chips = deals.map((dealId) => el("button", { type: "button", class: "chip", "data-deal": dealId, text: dealName(dealId), onclick: () => selectDeal(dealId) }));
  $("rep-deals").dataset.rep = repId;
  clear($("rep-deals"), ...(chips.length ? [el("span", { class: "muted", text: "Recent deals:" }), ...chips] : []));
}

// ---------------------------------------------------------------- team trend

async function loadTeamTrend() {
  const teamId = $("team").value;
  $("download-team").disabled = !teamId;
  if (!teamId) {
    $("team-trend-name").textContent = "";
    clear($("team-trend"), el("p", { class: "empty", text: "Pick a team." }));
    return;
  }
  $("team-trend-name").textContent = `· ${(state.teams.get(teamId) || {}).name || teamId}`;
  const scores = await api(scoresPath("teams", teamId));
  renderTrend($("team-trend"), scores.periods, "team score trend");
}

// ---------------------------------------------------------------- insights

function insightsPath(route) {
  return `/v1/insights/${route}${$("team").value ? `?team_id=${encodeURIComponent($("team").value)}` : ""}`;
}

async function loadInsights() {
  const [bright, atRisk, stale] = await Promise.all(["bright-spots", "at-risk-reps", "stale-deals"].map((route) => api(insightsPath(route))));
  renderInsights($("bright"), bright.items, "No bright spot.", (item) => selectRep(item.subject_id));
  renderInsights($("at-risk"), atRisk.items, "No rep is at risk.", (item) => selectRep(item.subject_id));
  renderInsights($("stale"), stale.items, "No stale deal.", (item) => selectDeal(item.subject_id));
}

// An insight's details as text; rep ids read as names.
function detailText(details) {
  return Object.entries(details || {})
    .filter(([, value]) => value !== null && typeof value !== "object")
    .map(([key, value]) => {
      if (key.endsWith("rep_id")) return `${key.replace(/_?rep_id$/, "").replaceAll("_", " ") || "rep"}: ${repName(value)}`;
      const shown = typeof value === "number" ? fmt(value) : /^\d{4}-\d{2}-\d{2}T/.test(String(value)) ? when(value) : value;
      return `${key.replaceAll("_", " ")}: ${shown}`;
    })
    .join(" · ");
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
        { "data-subject": item.subject_id },
        el("button", { type: "button", class: "title link", text: item.subject_name || item.subject_id, onclick: () => onPick(item) }),
        el("div", { class: "reasons" }, ...item.reasons.map((reason) => el("span", { class: "tag", text: reason.replaceAll("_", " ") }))),
        detailText(item.details) ? el("div", { class: "details muted", text: detailText(item.details) }) : null,
      ),
    ),
  );
}

// ---------------------------------------------------------------- deal timeline and one activity

async function selectDeal(dealId) {
  state.selectedDeal = dealId;
  state.timelineCursor = null;
  $("download-timeline").disabled = false;
  await loadTimeline(false).catch(showError);
}

async function loadTimeline(append) {
  const dealId = state.selectedDeal;
  const cursor = append && state.timelineCursor ? `&cursor=${state.timelineCursor}` : "";
  const page = await api(`/v1/deals/${encodeURIComponent(dealId)}/activities?limit=20${cursor}`);
  state.deals.set(page.deal.deal_id, page.deal.name || page.deal.deal_id);
  await nameDeals(page.items.flatMap((a) => [a.deal_id, ...a.runners_up.map((r) => r.deal_id)]));
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
  else clear(list, ...(items.length ? items : [el("li", { class: "empty", text: "No activity on this deal yet." })]));
  state.timelineCursor = page.next_cursor;
  $("timeline-more").hidden = !page.next_cursor;
}

function scores(activity) {
  // The chosen deal and the runners-up, each with its matching score at the same precision.
  const chosen = activity.deal_id ? `${dealName(activity.deal_id)} ${score(activity.deal_score)}` : "no deal";
  const runners = activity.runners_up.map((r) => `${dealName(r.deal_id)} ${score(r.score)}`);
  return runners.length ? `chosen: ${chosen} · runners-up: ${runners.join(", ")}` : `chosen: ${chosen} · no runner-up`;
}

function statusTag(status) {
  return el("span", { class: `status status-${status || "none"}`, text: (status || "not attributed").replaceAll("_", " ") });
}

function timelineItem(activity) {
  const confidence = activity.confidence === null ? 0 : activity.confidence;
  return el(
    "li",
    { class: "item", "data-rep": activity.rep_id || "", "data-occurred": activity.occurred_at, "data-status": activity.status || "" },
    el("span", { class: "icon", "aria-hidden": "true", text: ICONS[activity.kind] || "•" }),
    el("span", { class: "when", text: when(activity.occurred_at) }),
    el(
      "div",
      {},
      el(
        "button",
        { type: "button", class: "what link", "data-activity": activity.activity_id, onclick: () => selectActivity(activity.activity_id) },
        `${activity.kind} · ${activity.direction} · ${activity.outcome.replaceAll("_", " ")} — ${repName(activity.rep_id)}`,
      ),
      el("div", { class: "why" }, statusTag(activity.status), " rule ", el("code", { class: "rule-path", text: activity.rule_path || "n/a" }), el("span", { class: "scores", text: ` · ${scores(activity)}` })),
      activity.is_override ? el("div", { class: "override", text: "manual override" }) : null,
    ),
    el(
      "div",
      { class: "confidence" },
      el("span", { text: `confidence ${(confidence * 100).toFixed(0)}%` }),
      el("div", { class: "bar", "aria-hidden": "true" }, el("span", { style: `width:${confidence * 100}%` })),
    ),
  );
}

async function selectActivity(activityId) {
  state.selectedActivity = activityId;
  try {
    const activity = await api(`/v1/activities/${activityId}`);
    const a = activity.attribution;
    const explanation = (a && a.explanation) || {};
    const runners = a ? a.runners_up : [];
    await nameDeals([a && a.deal_id, ...runners.map((r) => r.deal_id)]);
    $("activity-name").textContent = `· ${activity.payload.kind || ""} ${activity.payload.occurred_at ? when(activity.payload.occurred_at) : ""}`;
    const candidates = a && a.deal_id ? [{ deal_id: a.deal_id, score: explanation.deal_score ?? null, chosen: true }, ...runners] : runners;
    clear(
      $("activity"),
      el(
        "dl",
        { class: "facts" },
        el("dt", { text: "Status" }), el("dd", {}, statusTag(a && a.status)),
        el("dt", { text: "Confidence" }), el("dd", { text: a ? `${(a.confidence * 100).toFixed(0)}%` : "–" }),
        el("dt", { text: "Rep" }), el("dd", { text: a ? repName(a.rep_id) : "–" }),
        el("dt", { text: "Rule" }), el("dd", {}, el("code", { text: (a && a.rule_path) || "n/a" })),
        el("dt", { text: "Version" }), el("dd", { text: a ? `${a.version}${a.is_override ? " (manual override)" : ""}` : "–" }),
      ),
      el(
        "table",
        { class: "candidates" },
        el("caption", { text: "Deals considered" }),
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Deal" }), el("th", { scope: "col", class: "num", text: "Score" }))),
        el(
          "tbody",
          {},
          ...(candidates.length
            ? candidates.map((c) => el("tr", { class: c.chosen ? "chosen" : "" }, el("td", { text: `${dealName(c.deal_id)}${c.chosen ? " (chosen)" : ""}` }), el("td", { class: "num", text: score(c.score) })))
            : [el("tr", {}, el("td", { colspan: "2", class: "empty", text: "No deal was a candidate." }))]),
        ),
      ),
      state.admin ? overrideForm(activityId, a, candidates) : null,
    );
  } catch (error) {
    showError(error);
  }
}

function overrideForm(activityId, attribution, candidates) {
  const dealOptions = [el("option", { value: "", text: "Keep the deal" }), ...candidates.map((c) => el("option", { value: c.deal_id, text: dealName(c.deal_id) }))];
  const repOptions = [el("option", { value: "", text: "Keep the rep" }), ...[...state.reps.values()].map((r) => el("option", { value: r.rep_id, text: r.name || r.rep_id }))];
  const message = el("p", { class: "muted", role: "status" });
  const form = el(
    "form",
    { class: "override-form", "aria-label": "Override the attribution" },
    el("h3", { text: "Override (admin)" }),
    el("label", { for: "override-deal", text: "Deal" }), el("select", { id: "override-deal" }, ...dealOptions),
    el("label", { for: "override-rep", text: "Rep" }), el("select", { id: "override-rep" }, ...repOptions),
    el("label", { for: "override-reason", text: "Reason" }), el("input", { id: "override-reason", type: "text", maxlength: "1000" }),
    el("button", { type: "submit", class: "primary", text: "Apply override" }),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    if ($("override-deal").value) body.deal_id = $("override-deal").value;
    if ($("override-rep").value) body.rep_id = $("override-rep").value;
    if ($("override-reason").value.trim()) body.reason = $("override-reason").value.trim();
    if (!body.deal_id && !body.rep_id) {
      message.textContent = "Choose a deal or a rep.";
      return;
    }
    try {
      await api(`/v1/activities/${activityId}/attribution`, {
        method: "PUT",
        headers: { ...CSRF, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      message.textContent = "Override recorded: the figures update once it is applied.";
      pollBoard(10);
    } catch (error) {
      message.textContent = error.message;
    }
  });
  if (!attribution) message.textContent = "Not attributed yet.";
  return form;
}

// After an override: re-read the leaderboard every 2 s until it changes (or ``times`` reads).
function pollBoard(times) {
  const before = JSON.stringify(state.board && state.board.entries);
  const again = async (left) => {
    await loadLeaderboard().catch(showError);
    if (JSON.stringify(state.board && state.board.entries) === before && left > 1) setTimeout(() => again(left - 1), 2000);
    else if (state.selectedRep) await selectRep(state.selectedRep);
  };
  setTimeout(() => again(times), 2000);
}

// ---------------------------------------------------------------- live updates

function setLive(text, on) {
  $("live-text").textContent = text;
  $("live").classList.toggle("on", on);
  $("live").classList.toggle("off", !on);
}

function connectStream() {
  if (state.stream) state.stream.close();
  const params = boardParams(null);
  // Same origin: EventSource sends the session cookie, so no credential goes into the URL.
  const source = new EventSource(`/v1/stream/leaderboard?${params}`);
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
    const board = JSON.parse(event.data);
    // The stream follows the latest period: it only replaces the board while that one is shown.
    if (state.calendar && board.period_start === state.calendar.period.start) renderLeaderboard(board);
    $("live").classList.add("flash");
    setTimeout(() => $("live").classList.remove("flash"), 400);
  });
}

async function refreshBoard() {
  $("error").textContent = "";
  await Promise.all([loadLeaderboard(), loadInsights(), loadTeamTrend()]);
  connectStream();
  if (state.selectedRep) await selectRep(state.selectedRep);
}

async function start() {
  try {
    await loadDirectory();
    await loadPeriod(null);
    await refreshBoard();
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------- wiring

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("api-key").value.trim());
});
$("sign-out").addEventListener("click", () => signOut());
$("team").addEventListener("change", () => refreshBoard().catch(showError));
$("metric").addEventListener("change", () => refreshBoard().catch(showError));
// A new granularity shows its own default (the last complete period) until a period was chosen;
// after that it keeps the day shown: the period of that granularity which contains it.
$("period").addEventListener("change", () => goToPeriod(state.chosen && state.calendar ? state.calendar.period.start : null, false));
$("period-prev").addEventListener("click", () => goToPeriod(state.calendar.previous.start));
$("period-next").addEventListener("click", () => state.calendar.next && goToPeriod(state.calendar.next.start));
$("period-current").addEventListener("click", () => goToPeriod(state.calendar.current.start));
$("period-date").addEventListener("change", () => $("period-date").value && goToPeriod($("period-date").value));
$("timeline-more").addEventListener("click", () => loadTimeline(true).catch(showError));

const boardPath = () => `/v1/leaderboard?${boardParams(state.calendar.period.start)}`;
$("download-leaderboard").addEventListener("click", () => download(boardPath(), `leaderboard-${state.calendar.period.label}.csv`));
$("download-scores").addEventListener("click", () => download(scoresPath("reps", state.selectedRep), `scores-${state.selectedRep}.csv`));
$("download-team").addEventListener("click", () => download(scoresPath("teams", $("team").value), `scores-${$("team").value}.csv`));
$("download-funnel").addEventListener("click", () => download(funnelPath(state.selectedRep), `funnel-${state.selectedRep}.csv`));
$("download-bright").addEventListener("click", () => download(insightsPath("bright-spots"), "bright-spots.csv"));
$("download-at-risk").addEventListener("click", () => download(insightsPath("at-risk-reps"), "at-risk-reps.csv"));
$("download-stale").addEventListener("click", () => download(insightsPath("stale-deals"), "stale-deals.csv"));
$("download-timeline").addEventListener("click", () => download(`/v1/deals/${encodeURIComponent(state.selectedDeal)}/activities?limit=200`, `deal-${state.selectedDeal}.csv`));

// A session cookie from an earlier sign-in (another tab, a reload) is used as is.
fetch("/v1/session", { credentials: "same-origin" })
  .then(async (response) => (response.ok ? enter(await response.json()) : showSignIn()))
  .catch(() => showSignIn());
