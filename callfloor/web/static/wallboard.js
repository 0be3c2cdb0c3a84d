// The wallboard: a tile per queue of one site, pushed by /api/v1/wallboard/stream.
import {
  ServerClock, clock, el, hhmm, keepAwake, level, longDate, mss, pct, seconds, subscribe, t,
  translate,
} from "./common.js";

const PER_PAGE = 16;
const PAGE_S = 15;

const params = new URLSearchParams(location.search);
const wantedQueues = (params.get("queues") || "")
  .split(",").map((q) => q.trim()).filter(Boolean);
const asked = params.get("site") || "";

const server = new ServerClock();
const tiles = new Map(); // queue -> {root, parts, tile}
let view = null;
let stale = null;
let page = 0;
let pageTurned = performance.now();

translate();
document.title = `callfloor ${t("title_wallboard")}`;
keepAwake();

function bandsOf(tile, metric) {
  return tile.thresholds.find((b) => b.metric === metric) || null;
}

function opText(op) {
  return { "<": "<", "<=": "≤", ">": ">", ">=": "≥" }[op] || op;
}

function bandText(band, metric, colour) {
  if (!band) return null;
  const v = metric === "longest_wait_s" || metric === "asa_s" ? seconds(band.value)
    : metric === "waiting" ? String(band.value) : pct(band.value);
  return t("legend_band", { c: t(colour), op: opText(band.op), v, src: band.source });
}

function legend(tile) {
  const formula = t(`formula_${tile.sl_formula}`, { t: seconds(tile.sl_threshold_s) });
  const sl = bandsOf(tile, "service_level");
  const lines = [
    `${t("legend_sl", { w: tile.window, f: formula })} · ${t("target")} ${pct(tile.sl_target)}`,
  ];
  const bands = [];
  for (const metric of ["service_level", "longest_wait_s", "abandon_rate", "waiting"]) {
    const b = bandsOf(tile, metric);
    if (!b) continue;
    const name = { service_level: t("service_level"), longest_wait_s: t("longest_wait"),
      abandon_rate: t("abandon_rate"), waiting: t("waiting") }[metric];
    for (const [band, colour] of [[b.warn, "amber"], [b.red, "red"]]) {
      const text = bandText(band, metric, colour);
      if (text) bands.push(`${name} ${text}`);
    }
  }
  if (!sl || (!sl.warn && !sl.red)) bands.unshift(`${t("service_level")}: ${t("no_threshold")}`);
  lines.push(bands.join(" · "));
  return lines;
}

function makeTile(name) {
  const root = el("article", "tile");
  root.dataset.queue = name;
  const head = el("div", "tile-head");
  const title = el("h2", "tile-name", name);
  const flag = el("span", "tile-flag");
  head.append(title, flag);
  const main = el("div", "tile-main");
  const slBox = el("div", "sl-box");
  const sl = el("div", "sl", "–");
  slBox.append(sl);
  const side = el("dl", "side");
  const parts = { root, title, flag, sl };
  for (const [key, label] of [["waiting", "waiting"], ["longest", "longest_wait"],
    ["abandon", "abandon_rate"], ["asa", "asa"]]) {
    const dt = el("dt", "label", t(label));
    const dd = el("dd", `value ${key}`, "–");
    side.append(dt, dd);
    parts[key] = dd;
  }
  main.append(slBox, side);
  const agents = el("div", "tile-agents");
  for (const [key, label] of [["avail", "available"], ["oncall", "on_call"], ["nr", "not_ready"]]) {
    const box = el("span", `agent-count ${key}-box`);
    const lab = el("span", "label", t(label));
    const val = el("span", `value ${key}`, "–");
    box.append(lab, " ", val);
    agents.append(box);
    parts[key] = val;
  }
  const foot = el("footer", "legend");
  const l1 = el("div", "legend-line");
  const l2 = el("div", "legend-line");
  foot.append(l1, l2);
  parts.legend = [l1, l2];
  root.append(head, main, agents, foot);
  return { root, parts, tile: null };
}

function setLevel(node, value) {
  node.classList.remove("lvl-ok", "lvl-warn", "lvl-red", "lvl-none");
  node.classList.add(`lvl-${value}`);
  node.dataset.level = value;
}

function longestOf(waitingSince) {
  if (waitingSince === null || waitingSince === undefined) return 0;
  const now = stale ? view.as_of : (server.now() ?? view.as_of);
  return Math.max(0, now - waitingSince);
}

function renderTile(entry) {
  const { parts, tile } = entry;
  const v = tile.service_level;
  if (v === null) parts.sl.textContent = "–";
  // Floored: a service level just under its target never reads as meeting it.
  else parts.sl.replaceChildren(String(Math.floor(v * 100 + 1e-9)), el("span", "pct-sign", "%"));
  parts.sl.title = `${t("service_level")} ${tile.window}`;
  const slLevel = level(tile.service_level, bandsOf(tile, "service_level"));
  setLevel(parts.sl, slLevel);
  parts.waiting.textContent = String(tile.waiting);
  setLevel(parts.waiting, level(tile.waiting, bandsOf(tile, "waiting")));
  parts.abandon.textContent = pct(tile.abandon_rate);
  setLevel(parts.abandon, level(tile.abandon_rate, bandsOf(tile, "abandon_rate")));
  parts.asa.textContent = mss(tile.asa_s);
  const a = tile.agents;
  parts.avail.textContent = String(a.available);
  parts.oncall.textContent = String(a.on_call + a.ringing + a.wrap_up);
  parts.nr.textContent = String(a.not_ready);
  const [l1, l2] = legend(tile);
  parts.legend[0].textContent = l1;
  parts.legend[1].textContent = l2;
  parts.root.title = `${l1}\n${l2}`;
  tickTile(entry);
}

function tickTile(entry) {
  const { parts, tile } = entry;
  const longest = longestOf(tile.waiting_since);
  parts.longest.textContent = mss(longest);
  const waitLevel = level(tile.waiting ? longest : 0, bandsOf(tile, "longest_wait_s"));
  setLevel(parts.longest, waitLevel);
  const slLevel = parts.sl.dataset.level;
  const worst = [slLevel, waitLevel, parts.abandon.dataset.level, parts.waiting.dataset.level];
  const overall = worst.includes("red") ? "red" : worst.includes("warn") ? "warn"
    : worst.includes("ok") ? "ok" : "none";
  setLevel(parts.root, overall);
  parts.flag.textContent = slLevel === "red" || slLevel === "warn" ? t("below_target")
    : waitLevel !== "ok" && waitLevel !== "none" ? t("above_threshold") : "";
}

function shown() {
  let list = view.tiles;
  if (wantedQueues.length) {
    const order = new Map(wantedQueues.map((q, i) => [q, i]));
    list = list.filter((q) => order.has(q.name)).sort((a, b) => order.get(a.name) - order.get(b.name));
  }
  return list;
}

function layout(n) {
  const grid = document.getElementById("tiles");
  const cols = n <= 1 ? 1 : n <= 2 ? 2 : n <= 4 ? 2 : n <= 6 ? 3 : n <= 9 ? 3 : 4;
  const rows = Math.max(1, Math.ceil(n / cols));
  grid.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
  grid.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
  grid.dataset.cols = String(cols);
  grid.dataset.rows = String(rows);
}

function renderTiles() {
  const grid = document.getElementById("tiles");
  const list = shown();
  const pages = Math.max(1, Math.ceil(list.length / PER_PAGE));
  if (page >= pages) page = 0;
  const visible = list.slice(page * PER_PAGE, page * PER_PAGE + PER_PAGE);
  document.getElementById("page-indicator").textContent =
    pages > 1 ? `${t("page")} ${page + 1}/${pages}` : "";
  const keep = new Set(visible.map((q) => q.name));
  for (const [name, entry] of tiles) {
    if (!keep.has(name)) {
      entry.root.remove();
      tiles.delete(name);
    }
  }
  document.getElementById("placeholder")?.remove();
  visible.forEach((tile, i) => {
    let entry = tiles.get(tile.name);
    if (!entry) {
      entry = makeTile(tile.name);
      tiles.set(tile.name, entry);
    }
    entry.tile = tile;
    if (grid.children[i] !== entry.root) grid.insertBefore(entry.root, grid.children[i] || null);
    renderTile(entry);
  });
  layout(visible.length);
}

function renderStrip() {
  const tz = view.clock.timezone;
  document.getElementById("site-name").textContent = view.site;
  document.getElementById("local-date").textContent = longDate(view.clock.local_date, tz);
  const start = view.clock.interval_start;
  const end = start + view.clock.interval_minutes * 60;
  document.getElementById("interval").textContent = `${hhmm(start, tz)}–${hhmm(end, tz)}`;
  const totals = document.getElementById("totals");
  const s = view.totals;
  totals.replaceChildren();
  const items = [
    ["service_level", `${pct(s.service_level)}`, "sl-total"],
    ["waiting", String(s.waiting), "waiting-total"],
    ["longest_wait", mss(longestOf(s.waiting_since)), "longest-total"],
    ["available", String(s.agents.available), "avail-total"],
    ["on_call", String(s.agents.on_call + s.agents.ringing + s.agents.wrap_up), "oncall-total"],
    ["not_ready", String(s.agents.not_ready), "nr-total"],
  ];
  for (const [label, value, cls] of items) {
    const box = el("span", "total");
    box.append(el("span", "label", t(label)), " ", el("span", `value ${cls}`, value));
    totals.append(box);
  }
}

function renderAlerts() {
  const box = document.getElementById("alerts");
  const firing = (view.alerts || []).filter((a) => a.state === "firing");
  box.replaceChildren();
  box.classList.toggle("firing", firing.length > 0);
  if (!firing.length) {
    box.append(el("span", "muted", t("no_alerts")));
    return;
  }
  const tz = view.clock.timezone;
  for (const a of firing) {
    const item = el("span", `alert sev-${a.severity}`);
    item.dataset.fingerprint = a.fingerprint;
    item.append(
      el("span", "alert-sev", a.severity),
      " ",
      el("span", "alert-rule", a.rule),
      " ",
      el("span", "alert-scope", a.scope),
      " ",
      el("span", "alert-since", `${t("since")} ${clock(a.fired_at ?? a.since, tz)}`),
    );
    box.append(item);
  }
}

function renderStale() {
  const box = document.getElementById("stale");
  document.body.classList.toggle("is-stale", !!stale);
  if (!stale) {
    box.classList.add("hidden");
    box.textContent = "";
    return;
  }
  const tz = view ? view.clock.timezone : "UTC";
  const since = stale.since !== null && stale.since !== undefined ? clock(stale.since, tz) : "–";
  const why = stale.reason === "server" ? t("stale_server") : t("stale_stream");
  box.textContent = `${t("stale_since")} ${since} (${why})`;
  box.classList.remove("hidden");
}

function onMessage(message) {
  if (!message.view) {
    const grid = document.getElementById("tiles");
    grid.replaceChildren(el("p", "muted big", `${t("waiting_for_site")} ${asked || ""} (${message.sites.join(", ")})`));
    tiles.clear();
    return;
  }
  view = message.view;
  server.observe(view.as_of);
  renderStrip();
  renderTiles();
  renderAlerts();
}

function everySecond() {
  if (view) {
    const tz = view.clock.timezone;
    const now = stale ? view.as_of : (server.now() ?? view.as_of);
    document.getElementById("local-time").textContent = clock(now, tz);
    for (const entry of tiles.values()) tickTile(entry);
    const longest = document.querySelector(".longest-total");
    if (longest) longest.textContent = mss(longestOf(view.totals.waiting_since));
    if (performance.now() - pageTurned > PAGE_S * 1000) {
      pageTurned = performance.now();
      const pages = Math.ceil(shown().length / PER_PAGE);
      if (pages > 1) {
        page = (page + 1) % pages;
        renderTiles();
      }
    }
  }
}

const url = `/api/v1/wallboard/stream${asked ? `?site=${encodeURIComponent(asked)}` : ""}`;
subscribe(url, "wallboard", onMessage, (info) => { stale = info; renderStale(); });
setInterval(everySecond, 1000);
