// callfloor pages: languages, formatting, the board stream with its stale state.
// Plain modern JavaScript (ES modules), no library, no build step.

const STRINGS = {
  en: {
    title_wallboard: "Wallboard",
    title_supervisor: "Supervisor",
    service_level: "Service level",
    waiting: "Waiting",
    longest_wait: "Longest wait",
    available: "Available",
    on_call: "On call",
    not_ready: "Not ready",
    wrap_up: "Wrap-up",
    ringing: "Ringing",
    logged_out: "Logged out",
    abandon_rate: "Abandoned",
    asa: "ASA",
    agents: "Agents",
    interval: "Interval",
    today: "Today",
    site: "Site",
    no_alerts: "No alerts firing",
    alerts: "Alerts",
    violations: "Violations",
    no_violations: "No active violations",
    stale_since: "Data stale since",
    stale_server: "the server serves this site as it last stood",
    stale_stream: "no update from the server",
    connecting: "Connecting…",
    waiting_for_site: "Waiting for data of site",
    below_target: "below target",
    above_threshold: "over threshold",
    no_threshold: "no threshold",
    target: "target",
    window_live: "now",
    formula_abandoned_negative: "answered within {t} ÷ offered (abandons within {t} count against)",
    formula_ignore_abandoned: "answered within {t} ÷ (offered − abandoned within {t})",
    formula_abandoned_positive: "(answered + abandoned within {t}) ÷ offered",
    legend_sl: "SL {w} = {f}",
    legend_wait: "amber > {v} ({src})",
    legend_band: "{c} {op} {v} ({src})",
    amber: "amber",
    red: "red",
    page: "page",
    agent: "Agent",
    team: "Team",
    state: "State",
    time_in_state: "Time in state",
    reason: "Reason",
    not_ready_today: "Not ready today",
    answered: "Answered",
    missed: "Missed",
    aht_today: "AHT today",
    all_teams: "All teams",
    all_queues: "All queues",
    all_states: "All states",
    filter: "Filter",
    queue: "Queue",
    acknowledge: "Acknowledge",
    acknowledged: "Acknowledged",
    ack_comment: "Comment",
    ack_failed: "Acknowledgement failed",
    ack_need_session: "Sign in with an operator token to acknowledge",
    since: "since",
    severity: "Severity",
    rule: "Rule",
    scope: "Scope",
    limits: "limits",
    kind_not_ready_exceeded: "not ready too long",
    kind_wrap_up_exceeded: "wrap-up too long",
    kind_not_ready_daily_exceeded: "daily not-ready limit",
    kind_missed_calls_exceeded: "missed calls",
    kind_stale_agent: "no state update",
    kind_late_login: "late login",
    kind_early_logout: "early logout",
    login_title: "Sign in",
    login_token: "Token",
    login_submit: "Sign in",
    login_failed: "Sign-in failed",
    login_open: "Reads are open on this service: no sign-in is needed.",
    signed_in: "Signed in",
    sign_out: "Sign out",
    make_link: "Link for a screen",
    rows: "agents",
  },
  "zh-CN": {
    title_wallboard: "实时看板",
    title_supervisor: "班组长视图",
    service_level: "服务水平",
    waiting: "排队中",
    longest_wait: "最长等待",
    available: "空闲",
    on_call: "通话中",
    not_ready: "未就绪",
    wrap_up: "话后处理",
    ringing: "振铃",
    logged_out: "已签出",
    abandon_rate: "放弃率",
    asa: "平均应答",
    agents: "坐席",
    interval: "时段",
    today: "今日",
    site: "站点",
    no_alerts: "无告警",
    alerts: "告警",
    violations: "违规",
    no_violations: "无进行中的违规",
    stale_since: "数据已停止更新，自",
    stale_server: "服务器按最后状态提供该站点数据",
    stale_stream: "未收到服务器更新",
    connecting: "正在连接…",
    waiting_for_site: "等待站点数据",
    below_target: "低于目标",
    above_threshold: "超过阈值",
    no_threshold: "无阈值",
    target: "目标",
    window_live: "当前",
    formula_abandoned_negative: "{t}内接听 ÷ 呼入（{t}内放弃计为未达标）",
    formula_ignore_abandoned: "{t}内接听 ÷（呼入 − {t}内放弃）",
    formula_abandoned_positive: "（{t}内接听 + {t}内放弃）÷ 呼入",
    legend_sl: "服务水平 {w} = {f}",
    legend_wait: "黄色 > {v}（{src}）",
    legend_band: "{c} {op} {v}（{src}）",
    amber: "黄色",
    red: "红色",
    page: "页",
    agent: "坐席",
    team: "班组",
    state: "状态",
    time_in_state: "状态时长",
    reason: "原因",
    not_ready_today: "今日未就绪",
    answered: "接听",
    missed: "未接",
    aht_today: "今日平均处理时长",
    all_teams: "全部班组",
    all_queues: "全部队列",
    all_states: "全部状态",
    filter: "筛选",
    queue: "队列",
    acknowledge: "确认",
    acknowledged: "已确认",
    ack_comment: "备注",
    ack_failed: "确认失败",
    ack_need_session: "请使用操作员令牌登录后确认",
    since: "自",
    severity: "级别",
    rule: "规则",
    scope: "范围",
    limits: "限制",
    kind_not_ready_exceeded: "未就绪超时",
    kind_wrap_up_exceeded: "话后处理超时",
    kind_not_ready_daily_exceeded: "超过每日未就绪上限",
    kind_missed_calls_exceeded: "未接来电过多",
    kind_stale_agent: "长时间无状态更新",
    kind_late_login: "迟到登录",
    kind_early_logout: "提前登出",
    login_title: "登录",
    login_token: "令牌",
    login_submit: "登录",
    login_failed: "登录失败",
    login_open: "本服务的读取无需令牌，无需登录。",
    signed_in: "已登录",
    sign_out: "退出登录",
    make_link: "生成大屏链接",
    rows: "名坐席",
  },
};

/** The page's language: ?lang=, else the browser's (zh* -> zh-CN), else English. */
export function language() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked && STRINGS[asked]) return asked;
  if (asked && asked.toLowerCase().startsWith("zh")) return "zh-CN";
  if (asked && asked.toLowerCase().startsWith("en")) return "en";
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const low = tag.toLowerCase();
    if (low.startsWith("zh")) return "zh-CN";
    if (low.startsWith("en")) return "en";
  }
  return "en";
}

export const LANG = language();
document.documentElement.lang = LANG;

/** The text of a key in the page's language, with {name} filled from vars. */
export function t(key, vars = {}) {
  const table = STRINGS[LANG] || STRINGS.en;
  let text = table[key] ?? STRINGS.en[key] ?? key;
  for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, value);
  return text;
}

/** Fill every [data-t] element with its text. */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
}

/** A duration in seconds as m:ss (minutes may pass 59: 75:03). */
export function mss(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** A fraction as a whole percentage ("87%"), or an en dash without a value. */
export function pct(fraction, digits = 0) {
  if (fraction === null || fraction === undefined) return "–";
  return `${(fraction * 100).toFixed(digits)}%`;
}

const formats = new Map();
function fmt(tz, options) {
  const key = tz + JSON.stringify(options);
  let found = formats.get(key);
  if (!found) {
    found = new Intl.DateTimeFormat(LANG, { timeZone: tz, ...options });
    formats.set(key, found);
  }
  return found;
}

/** An instant (epoch seconds) as HH:MM:SS in a time zone. */
export function clock(epoch, tz) {
  return fmt(tz, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" })
    .format(new Date(epoch * 1000));
}

/** An instant as HH:MM in a time zone. */
export function hhmm(epoch, tz) {
  return fmt(tz, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(epoch * 1000));
}

/** A site-local ISO date ("2026-11-30") as the language writes it, with its weekday. */
export function longDate(iso, tz) {
  const [y, m, d] = iso.split("-").map(Number);
  const noon = Date.UTC(y, m - 1, d, 12);
  return new Intl.DateTimeFormat(LANG, {
    timeZone: "UTC", year: "numeric", month: "long", day: "numeric", weekday: "short",
  }).format(new Date(noon));
}

/** A seconds threshold for a legend: "20 s", m:ss from a minute on, hours from an hour. */
export function seconds(value) {
  if (value < 60) return `${value} s`;
  if (value < 3600) return mss(value);
  const h = value / 3600;
  return Number.isInteger(h) ? `${h} h` : `${Math.floor(h)}:${mss(value % 3600).padStart(5, "0")}`;
}

/** Whether value is in a band ({op, value}). */
export function inBand(value, band) {
  if (!band || value === null || value === undefined) return false;
  switch (band.op) {
    case "<": return value < band.value;
    case "<=": return value <= band.value;
    case ">": return value > band.value;
    case ">=": return value >= band.value;
    default: return false;
  }
}

/** "ok", "warn" or "red" for a value against its bands ({warn, red}); "none" without bands. */
export function level(value, bands) {
  if (!bands || (!bands.warn && !bands.red)) return "none";
  if (value === null || value === undefined) return "none";
  if (inBand(value, bands.red)) return "red";
  if (inBand(value, bands.warn)) return "warn";
  return "ok";
}

/** Keep the screen on (a wallboard never sleeps); taken again when the tab is shown. */
export function keepAwake() {
  let lock = null;
  async function take() {
    try {
      if ("wakeLock" in navigator && document.visibilityState === "visible" && !lock) {
        lock = await navigator.wakeLock.request("screen");
        lock.addEventListener("release", () => { lock = null; });
      }
    } catch (_) {
      lock = null; // refused (no user gesture, battery saver): the page still updates
    }
  }
  document.addEventListener("visibilitychange", take);
  take();
}

/**
 * Subscribe to a board stream. onView(message) gets each push; onStale(info) is called
 * with {since, reason} when data stops being fresh and with null when it is fresh again.
 * Fresh means: a push within staleAfter seconds, and the server not marking the site stale.
 */
export function subscribe(url, board, onView, onStale, staleAfter = 3.5) {
  let source = null;
  let lastMessage = 0;
  let lastAsOf = null;
  let stale = null;
  let serverStale = null;

  function setStale(info) {
    const key = info ? `${info.reason}` : "";
    const old = stale ? `${stale.reason}` : "";
    if (key === old && (!info || stale.since === info.since)) return;
    stale = info;
    onStale(info);
  }

  function check() {
    if (serverStale) {
      setStale({ since: serverStale.as_of, reason: "server" });
    } else if (lastMessage && performance.now() - lastMessage > staleAfter * 1000) {
      setStale({ since: lastAsOf, reason: "stream" });
    } else if (lastMessage) {
      setStale(null);
    }
  }

  function open() {
    source = new EventSource(url);
    source.addEventListener(board, (event) => {
      const message = JSON.parse(event.data);
      lastMessage = performance.now();
      if (message.view) {
        lastAsOf = message.view.as_of;
        serverStale = message.view.stale || null;
      }
      onView(message);
      check();
    });
    source.onerror = () => {
      // EventSource reconnects by itself after the server's retry delay; a closed one
      // (the server answered with an error) is opened again here.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(open, 2000);
      }
      check();
    };
  }
  open();
  setInterval(check, 500);
  return { close: () => source && source.close() };
}

/** Seconds between this browser's clock and the server's as_of at the last push. */
export class ServerClock {
  constructor() { this.skew = null; }
  observe(asOf) { this.skew = Date.now() / 1000 - asOf; }
  /** The server's clock now, as the last push lets it be estimated. */
  now() { return this.skew === null ? null : Date.now() / 1000 - this.skew; }
}

/** Create an element with a class and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}
