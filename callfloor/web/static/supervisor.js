// The supervisor view: one site's agents, violations and alerts, pushed by
// /api/v1/supervisor/stream. Sortable, filterable; times in the site's zone.
import { ServerClock, clock, el, hhmm, longDate, mss, subscribe, t, translate } from "./common.js";

const params = new URLSearchParams(location.search);
const asked = params.get("site") || "";
const server = new ServerClock();
let view = null;
let acknowledge = false;
let stale = null;
let sortKey = params.get("sort") || "name";
let sortDir = params.get("dir") === "desc" ? -1 : 1;
const filters = { team: params.get("team") || "", state: params.get("state") || "",
  queue: params.get("queue") || "" };
const STATES = ["available", "ringing", "on_call", "wrap_up", "not_ready", "logged_out"];
let rowsShown = []; // [{row, tr, cells}]

translate();
document.title = `callfloor ${t("title_supervisor")}`;

function now() {
  return stale || !view ? (view ? view.as_of : 0) : (server.now() ?? view.as_of);
}

function timeInState(row) { return Math.max(0, now() - row.state_since); }
function notReadyToday(row) {
  return row.not_ready_today_s + (row.not_ready_counting ? Math.max(0, now() - view.as_of) : 0);
}
function nameOf(row) { return row.display_name || row.agent; }

const SORTS = {
  name: (r) => nameOf(r).toLowerCase(),
  team: (r) => (r.team || "").toLowerCase(),
  state: (r) => STATES.indexOf(r.state),
  time: (r) => timeInState(r),
  reason: (r) => (r.reason || "").toLowerCase(),
  nr: (r) => notReadyToday(r),
  answered: (r) => r.answered_today,
  missed: (r) => r.missed_today,
  aht: (r) => (r.aht_today_s ?? -1),
};

function option(select, value, text, selected) {
  const o = el("option", null, text);
  o.value = value;
  if (value === selected) o.selected = true;
  select.append(o);
}

function fillFilters() {
  const teams = [...new Set(view.agents.map((r) => r.team).filter(Boolean))].sort();
  const queues = [...new Set(view.agents.flatMap((r) => r.queues))].sort();
  const fill = (id, all, values, label, current) => {
    const select = document.getElementById(id);
    const key = JSON.stringify(values);
    if (select.dataset.values === key) return;
    select.dataset.values = key;
    select.replaceChildren();
    option(select, "", t(all), current);
    for (const v of values) option(select, v, label(v), current);
  };
  fill("f-team", "all_teams", teams, (v) => v, filters.team);
  fill("f-state", "all_states", STATES, (v) => t(v), filters.state);
  fill("f-queue", "all_queues", queues, (v) => v, filters.queue);
}

for (const [id, key] of [["f-team", "team"], ["f-state", "state"], ["f-queue", "queue"]]) {
  document.getElementById(id).addEventListener("change", (event) => {
    filters[key] = event.target.value;
    renderTable();
  });
}

for (const th of document.querySelectorAll("th[data-key]")) {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    if (sortKey === key) sortDir = -sortDir;
    else { sortKey = key; sortDir = 1; }
    renderTable();
  });
}

function limitsText(value) {
  const limits = view.limits.daily_not_ready_s;
  return `${mss(value)} / ${limits.map(mss).join(" · ")}`;
}

function fillTimes(entry) {
  const { row, cells } = entry;
  cells.time.textContent = mss(timeInState(row));
  const nr = notReadyToday(row);
  cells.nr.textContent = limitsText(nr);
  const first = view.limits.daily_not_ready_s[0];
  cells.nr.classList.toggle("over", first !== undefined && nr > first);
}

function renderTable() {
  if (!view) return;
  fillFilters();
  const rows = view.agents.filter((r) =>
    (!filters.team || r.team === filters.team)
    && (!filters.state || r.state === filters.state)
    && (!filters.queue || r.queues.includes(filters.queue)));
  const key = SORTS[sortKey] || SORTS.name;
  rows.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (x < y) return -sortDir;
    if (x > y) return sortDir;
    return a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0;
  });
  for (const th of document.querySelectorAll("th[data-key]")) {
    th.setAttribute("aria-sort", th.dataset.key === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
  }
  const body = document.querySelector("#agents tbody");
  const fragment = document.createDocumentFragment();
  rowsShown = rows.map((row) => {
    const tr = el("tr", row.violations.length ? "violating" : "");
    tr.dataset.agent = row.agent;
    tr.dataset.state = row.state;
    const nameCell = el("td", "name");
    nameCell.append(nameOf(row));
    if (row.display_name) nameCell.append(" ", el("span", "id", row.agent));
    const cells = {
      time: el("td", "num time"),
      nr: el("td", "num nr"),
    };
    const stateCell = el("td", "state", t(row.state));
    if (row.violations.length) stateCell.title = row.violations.map((k) => t(`kind_${k}`)).join(", ");
    tr.append(
      nameCell,
      el("td", "team", row.team || ""),
      stateCell,
      cells.time,
      el("td", "reason", row.reason || ""),
      cells.nr,
      el("td", "num answered", String(row.answered_today)),
      el("td", "num missed", String(row.missed_today)),
      el("td", "num aht", mss(row.aht_today_s)),
    );
    const entry = { row, tr, cells };
    fillTimes(entry);
    fragment.append(tr);
    return entry;
  });
  body.replaceChildren(fragment);
  document.getElementById("count").textContent = `${rows.length} / ${view.agents.length} ${t("rows")}`;
}

function renderViolations() {
  const list = document.getElementById("violations");
  list.replaceChildren();
  const names = new Map(view.agents.map((r) => [r.agent, nameOf(r)]));
  const tz = view.clock.timezone;
  if (!view.violations.length) list.append(el("li", "muted", t("no_violations")));
  for (const v of view.violations) {
    const li = el("li", `sev-${v.severity}`);
    li.append(
      el("strong", null, t(`kind_${v.kind}`)),
      el("span", null, names.get(v.agent) || v.agent),
      el("span", "label", `${t("since")} ${clock(v.started_at, tz)}`),
    );
    list.append(li);
  }
}

async function csrfToken() {
  const answer = await fetch("/api/v1/session", { credentials: "same-origin" });
  const session = await answer.json();
  for (const entry of Object.values(session.kinds || {})) if (entry.csrf) return entry.csrf;
  return null;
}

async function ack(alert, comment, status) {
  status.textContent = "…";
  try {
    const headers = { "Content-Type": "application/json" };
    const token = await csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
    const answer = await fetch(`/api/v1/alerts/${encodeURIComponent(alert.fingerprint)}/ack`, {
      method: "POST", headers, credentials: "same-origin", body: JSON.stringify({ comment }),
    });
    if (answer.ok) { status.textContent = t("acknowledged"); return; }
    if (answer.status === 401 || answer.status === 403) {
      status.replaceChildren();
      const link = el("a", null, t("ack_need_session"));
      link.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
      status.append(link);
      return;
    }
    const problem = await answer.json().catch(() => ({}));
    status.textContent = `${t("ack_failed")}: ${problem.error || answer.status}`;
  } catch (error) {
    status.textContent = `${t("ack_failed")}: ${error}`;
  }
}

function renderAlerts() {
  const list = document.getElementById("alerts");
  list.replaceChildren();
  const tz = view.clock.timezone;
  const alerts = view.alerts.filter((a) => a.state !== "resolved");
  if (!alerts.length) list.append(el("li", "muted", t("no_alerts")));
  for (const a of alerts) {
    const li = el("li", `alert sev-${a.severity}`);
    li.dataset.fingerprint = a.fingerprint;
    li.append(
      el("strong", "alert-sev", a.severity),
      el("span", "alert-rule", a.rule),
      el("span", "alert-scope", a.scope),
      el("span", "label", `${a.state} ${t("since")} ${clock(a.fired_at ?? a.since, tz)}`),
    );
    // The button exists only where the server takes acknowledgements: never a fake one.
    if (acknowledge && a.state === "firing") {
      const comment = el("input", "ack-comment");
      comment.placeholder = t("ack_comment");
      const button = el("button", "ack", t("acknowledge"));
      const status = el("span", "ack-status");
      button.addEventListener("click", () => ack(a, comment.value, status));
      li.append(comment, button, status);
    }
    list.append(li);
  }
}

function renderHeader() {
  const tz = view.clock.timezone;
  document.getElementById("site-name").textContent = view.site;
  document.getElementById("local-date").textContent = longDate(view.clock.local_date, tz);
  const start = view.clock.interval_start;
  document.getElementById("interval").textContent =
    `${hhmm(start, tz)}–${hhmm(start + view.clock.interval_minutes * 60, tz)}`;
}

function onMessage(message) {
  acknowledge = !!message.acknowledge;
  if (!message.view) {
    document.querySelector("#agents tbody").replaceChildren();
    document.getElementById("count").textContent = `${t("waiting_for_site")} ${asked}`;
    return;
  }
  view = message.view;
  server.observe(view.as_of);
  renderHeader();
  renderTable();
  renderViolations();
  renderAlerts();
}

function onStale(info) {
  stale = info;
  const box = document.getElementById("stale");
  if (!info) { box.classList.add("hidden"); return; }
  const tz = view ? view.clock.timezone : "UTC";
  const since = info.since !== null && info.since !== undefined ? clock(info.since, tz) : "–";
  box.textContent = `${t("stale_since")} ${since} (${info.reason === "server" ? t("stale_server") : t("stale_stream")})`;
  box.classList.remove("hidden");
}

setInterval(() => {
  if (!view) return;
  document.getElementById("local-time").textContent = clock(now(), view.clock.timezone);
  for (const entry of rowsShown) fillTimes(entry);
}, 1000);

subscribe(`/api/v1/supervisor/stream${asked ? `?site=${encodeURIComponent(asked)}` : ""}`,
  "supervisor", onMessage, onStale);
