// The station's display board: one snapshot, then live changes from /api/v1/events.
//
// Everything that came from the bus (pile ids, bulletin texts, session ids, station name)
// goes into the page as text (textContent, setAttribute), never as markup. Numbers are shown
// as the API gives them (Decimal strings); money is never turned into a float.

const STATES = ["available", "plugged", "charging", "finishing", "faulted", "maintenance", "offline"];
const ICONS = {
  available: "✓", plugged: "◐", charging: "⚡", finishing: "◔",
  faulted: "⚠", maintenance: "⚒", offline: "✕",
};
const SEVERITIES = ["critical", "major", "minor", "warning"];
const LANGUAGES = ["zh", "en"];
const STORED_LANGUAGE = "station-board.language";
const RETRY_FIRST = 1000;
const RETRY_MOST = 5000;
const CONFIRM_FOR = 4000;

const STRINGS = {
  zh: {
    title: "充电站看板", language: "语言", charger: "充电柜", legend: "图例",
    state_available: "空闲", state_plugged: "已插枪", state_charging: "充电中",
    state_finishing: "结束中", state_faulted: "故障", state_maintenance: "维护中",
    state_offline: "离线",
    totals_sessions: "今日订单", totals_energy: "今日电量", totals_revenue: "今日收入",
    totals_charging: "正在充电",
    bulletins: "告警", no_bulletins: "没有告警",
    severity_critical: "紧急", severity_major: "重要", severity_minor: "次要",
    severity_warning: "提示",
    causes: "可能原因", remedies: "处理方法", station_action: "站内处理",
    ack: "确认告警", acked_by: "已确认：{who}", station_wide: "全站",
    connection_lost: "连接中断，正在重新连接…",
    close: "关闭", pile: "充电桩",
    fact_state: "状态", fact_power: "功率", fact_session_energy: "本次电量",
    fact_energy: "电表读数", fact_linkquality: "信号质量", fact_last_seen: "最后通信",
    fact_session: "会话", fact_fault: "故障", fact_maintenance: "维护", fact_price: "价格",
    yes: "是", no: "否", none: "—",
    stop: "停止充电", stop_confirm: "再次点击确认停止", stop_sent: "停止指令已发送",
    stop_done: "会话已停止",
    maintenance_on: "设为维护", maintenance_off: "恢复服务",
    reason_placeholder: "维护原因", reason_required: "请填写维护原因",
    maintenance_set: "已设为维护", maintenance_cleared: "已恢复服务",
    ack_sent: "已确认", failed: "失败：{detail}", unreachable: "控制台无响应",
    chart_states: "状态记录", chart_link: "信号质量", chart_energy: "每日电量 (kWh)",
    chart_sessions: "最近会话", chart_faults: "最近故障", no_history: "暂无记录",
    loading: "加载中…",
    registrations: "新设备", no_registrations: "没有等待批准的设备", permit_join: "允许入网 60 秒",
    joining_opened: "{charger} 允许入网至 {until}", approve: "批准", reject: "拒绝",
    pile_id: "桩号", approved: "{device} 已批准为 {pile}", rejected: "{device} 已拒绝",
    joined_at: "入网时间", unknown_device: "未知型号",
    decommission: "退役此桩", decommission_confirm: "再次点击确认退役", decommissioned: "{pile} 已退役",
  },
  en: {
    title: "Station board", language: "Language", charger: "Charger", legend: "Legend",
    state_available: "Available", state_plugged: "Plugged in", state_charging: "Charging",
    state_finishing: "Finishing", state_faulted: "Faulted", state_maintenance: "Maintenance",
    state_offline: "Offline",
    totals_sessions: "Sessions today", totals_energy: "Energy today",
    totals_revenue: "Revenue today", totals_charging: "Charging now",
    bulletins: "Active bulletins", no_bulletins: "No active bulletins",
    severity_critical: "Critical", severity_major: "Major", severity_minor: "Minor",
    severity_warning: "Warning",
    causes: "Possible causes", remedies: "Remedies", station_action: "At the station",
    ack: "Acknowledge", acked_by: "Acknowledged by {who}", station_wide: "Station",
    connection_lost: "Connection lost — reconnecting…",
    close: "Close", pile: "Pile",
    fact_state: "State", fact_power: "Power", fact_session_energy: "Session energy",
    fact_energy: "Meter", fact_linkquality: "Link quality", fact_last_seen: "Last seen",
    fact_session: "Session", fact_fault: "Fault", fact_maintenance: "Maintenance",
    fact_price: "Price",
    yes: "yes", no: "no", none: "—",
    stop: "Stop session", stop_confirm: "Click again to stop", stop_sent: "Stop sent",
    stop_done: "Session stopped",
    maintenance_on: "Put into maintenance", maintenance_off: "Back in service",
    reason_placeholder: "Reason for maintenance", reason_required: "Please give a reason",
    maintenance_set: "Pile in maintenance", maintenance_cleared: "Pile back in service",
    ack_sent: "Acknowledged", failed: "Failed: {detail}", unreachable: "The console is not answering",
    chart_states: "State history", chart_link: "Link quality", chart_energy: "Energy per day (kWh)",
    chart_sessions: "Recent sessions", chart_faults: "Recent faults", no_history: "No history yet",
    loading: "Loading…",
    registrations: "New devices", no_registrations: "No device waits for approval",
    permit_join: "Allow joining (60 s)", joining_opened: "{charger} accepts new devices until {until}",
    approve: "Approve", reject: "Reject", pile_id: "Pile id",
    approved: "{device} approved as {pile}", rejected: "{device} rejected",
    joined_at: "Joined", unknown_device: "unknown model",
    decommission: "Decommission pile", decommission_confirm: "Click again to decommission",
    decommissioned: "{pile} decommissioned",
  },
};
const STATE_COLOURS = {
  available: "#2e9d57", plugged: "#2f7fd8", charging: "#17b3c2", finishing: "#8a5cd0",
  faulted: "#d63a3a", maintenance: "#d9972b", offline: "#6b7480",
};

const board = {
  language: "zh",
  station: "",
  currency: "",
  chargers: {},
  piles: new Map(),
  bulletins: [],
  totals: null,
  detail: null,  // the pile id shown in the detail view
  history: null,
  acked: new Map(),  // bulletin id -> who, acknowledged from this page
  registrations: [],  // devices that joined a charger's network and wait for an operator
};

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function t(key, values = {}) {
  const text = STRINGS[board.language][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function pick(text) {
  // A catalogue text in every language: the board's, else any.
  if (!text) return "";
  return text[board.language] ?? text.en ?? text.zh ?? "";
}

function shown(value, unit = "") {
  return value === null || value === undefined ? t("none") : unit ? `${value} ${unit}` : String(value);
}

function when(iso) {
  if (!iso) return t("none");
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? String(iso) : at.toLocaleString(board.language === "zh" ? "zh-CN" : "en-GB");
}

// -- language -------------------------------------------------------------------------------

function chosenLanguage(fallback) {
  let stored = null;
  try { stored = localStorage.getItem(STORED_LANGUAGE); } catch { /* private mode */ }
  if (LANGUAGES.includes(stored)) return stored;
  return LANGUAGES.includes(fallback) ? fallback : "zh";
}

function setLanguage(language, remember) {
  board.language = language;
  if (remember) {
    try { localStorage.setItem(STORED_LANGUAGE, language); } catch { /* private mode */ }
  }
  document.documentElement.lang = language;
  document.body.dataset.language = language;
  for (const node of $$("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of $$("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of $$("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  for (const button of $$("[data-lang]")) button.setAttribute("aria-pressed", String(button.dataset.lang === language));
  tick();
  renderAll();
}

// -- the board ------------------------------------------------------------------------------

function renderAll() {
  document.title = board.station ? `${board.station} · ${t("title")}` : t("title");
  $("[data-station]").textContent = board.station;
  renderLegend();
  renderChargers();
  renderBulletins();
  renderRegistrations();
  renderTotals();
  if (board.detail) renderDetail();
}

function renderLegend() {
  const legend = $("[data-legend]");
  legend.replaceChildren(el("span", { class: "legend-title" }, t("legend")));
  for (const state of STATES) {
    legend.append(el("span", { class: "legend-item", "data-legend-state": state },
      el("span", { class: "swatch", "data-state": state, "aria-hidden": "true" }, ICONS[state]),
      t(`state_${state}`)));
  }
}

function renderChargers() {
  const area = $("[data-chargers]");
  const blocks = [];
  for (const [charger, pileIds] of Object.entries(board.chargers)) {
    const tiles = el("div", { class: "tiles" });
    for (const pileId of pileIds) tiles.append(tileOf(pileId));
    blocks.push(el("section", { class: "charger", "data-charger": charger },
      el("h2", {}, `${t("charger")} ${charger}`), tiles));
  }
  area.replaceChildren(...blocks);
}

function tileOf(pileId) {
  const tile = el("button", { type: "button", class: "tile", "data-pile": pileId });
  tile.addEventListener("click", () => openDetail(pileId));
  fillTile(tile, board.piles.get(pileId));
  return tile;
}

function fillTile(tile, view) {
  const pileId = tile.dataset.pile;
  const state = view?.state ?? "offline";
  tile.dataset.state = state;
  tile.dataset.fault = view?.fault ?? "";
  tile.dataset.maintenance = String(Boolean(view?.maintenance));
  tile.dataset.sessionEnergy = view?.session_energy_kwh ?? "";
  const parts = [
    el("span", { class: "pile-id", "data-field": "id" }, pileId),
    el("span", { class: "pile-state", "data-field": "state" },
      el("span", { class: "icon", "aria-hidden": "true" }, ICONS[state] ?? "?"), ` ${t(`state_${state}`)}`),
  ];
  if (view && (state === "charging" || state === "finishing")) {
    parts.push(el("span", { class: "metrics" },
      el("span", { "data-field": "power" }, shown(view.power_kw, "kW")),
      el("span", { "data-field": "session-energy" }, shown(view.session_energy_kwh, "kWh"))));
  }
  if (state === "maintenance" && view?.maintenance_reason) {
    parts.push(el("span", { class: "reason", "data-field": "reason" }, view.maintenance_reason));
  }
  if (view?.fault) parts.push(el("span", { class: "fault", "data-field": "fault" }, `⚠ ${view.fault}`));
  if (view?.maintenance && state !== "maintenance") {
    parts.push(el("span", { class: "fault", "data-field": "maintenance" }, `${ICONS.maintenance} ${t("state_maintenance")}`));
  }
  tile.replaceChildren(...parts);
  tile.title = `${pileId} · ${t(`state_${state}`)}`;
}

function putPile(view) {
  board.piles.set(view.id, view);
  const tile = $$("[data-pile]", $("[data-chargers]")).find((node) => node.dataset.pile === view.id);
  if (tile) fillTile(tile, view);
  if (board.detail === view.id) renderDetail();
}

function renderBulletins() {
  const list = $("[data-bulletins]");
  list.replaceChildren(...board.bulletins.map(bulletinItem));
  $("[data-bulletins-empty]").hidden = board.bulletins.length > 0;
}

function bulletinItem(bulletin) {
  const who = bulletin.acked_by ?? board.acked.get(bulletin.id) ?? null;
  const severity = SEVERITIES.includes(bulletin.severity) ? bulletin.severity : "warning";
  const item = el("li", {
    class: "bulletin", "data-bulletin": bulletin.id, "data-severity": severity,
    "data-pile": bulletin.pile_id ?? "", "data-code": bulletin.code, "data-acked": String(Boolean(who)),
  });
  item.append(el("header", {},
    el("span", { class: "severity", "data-field": "severity" }, t(`severity_${severity}`)),
    el("span", { class: "where", "data-field": "pile" }, bulletin.pile_id ?? bulletin.charger ?? t("station_wide")),
    el("span", { class: "title", "data-field": "title" }, pick(bulletin.title))));
  const text = pick(bulletin.text);
  if (text) item.append(el("p", { class: "text", "data-field": "text" }, text));
  if (bulletin.causes?.length) {
    item.append(el("h3", {}, t("causes")),
      el("ul", { "data-field": "causes" }, ...bulletin.causes.map((cause) => el("li", {}, pick(cause)))));
  }
  if (bulletin.remedies?.length) {
    item.append(el("h3", {}, t("remedies")),
      el("ol", { "data-field": "remedies" }, ...bulletin.remedies.map((remedy) => el("li", {}, pick(remedy)))));
  }
  if (who) {
    item.append(el("p", { class: "acked", "data-field": "acked" }, `✓ ${t("acked_by", { who })}`));
  } else {
    const button = el("button", { type: "button", "data-action": "ack" }, t("ack"));
    button.addEventListener("click", () => acknowledge(bulletin, button));
    item.append(button);
  }
  return item;
}

function renderRegistrations() {
  const select = $("[data-join-charger]");
  const chosen = select.value;
  select.replaceChildren(...Object.keys(board.chargers).map((charger) => el("option", { value: charger }, charger)));
  if (chosen && board.chargers[chosen]) select.value = chosen;
  $("[data-registrations]").replaceChildren(...board.registrations.map(registrationItem));
  $("[data-registrations-empty]").hidden = board.registrations.length > 0;
}

function nextFreePile(charger) {
  // The pile id after the charger's highest: c1-p13 on a charger of twelve.
  const numbers = (board.chargers[charger] ?? []).map((pileId) => Number(pileId.split("-p")[1]));
  const next = Math.min(Math.max(0, ...numbers) + 1, 99);
  return `${charger}-p${String(next).padStart(2, "0")}`;
}

function registrationItem(registration) {
  const device = registration.ieee_address;
  const what = [registration.vendor, registration.model].filter(Boolean).join(" ") || t("unknown_device");
  const input = el("input", { type: "text", maxlength: "8", "data-field": "pile-id", "aria-label": t("pile_id"), value: nextFreePile(registration.charger) });
  const approve = el("button", { type: "button", "data-action": "approve" }, t("approve"));
  const reject = el("button", { type: "button", "data-action": "reject" }, t("reject"));
  approve.addEventListener("click", () => decide(device, "approve", { pile_id: input.value.trim() }, [approve, reject]));
  reject.addEventListener("click", () => decide(device, "reject", undefined, [approve, reject]));
  return el("li", { class: "registration", "data-registration": device, "data-charger": registration.charger },
    el("span", { class: "device", "data-field": "device" }, `${registration.charger} · ${device}`),
    el("span", { class: "what", "data-field": "model" }, `${what} · ${t("joined_at")} ${when(registration.joined_at)}`),
    el("span", { class: "decide" }, input, approve, reject));
}

async function decide(device, action, body, buttons) {
  for (const button of buttons) button.disabled = true;
  try {
    const answer = await call("POST", `/api/v1/registrations/${encodeURIComponent(device)}/${action}`, body);
    toast(action === "approve" ? t("approved", { device, pile: answer?.pile_id ?? "" }) : t("rejected", { device }));
  } catch (error) {
    toast(t("failed", { detail: error.message }), "error");
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

async function permitJoin(button) {
  const charger = $("[data-join-charger]").value;
  if (!charger) return;
  button.disabled = true;
  try {
    const answer = await call("POST", `/api/v1/chargers/${encodeURIComponent(charger)}/permit-join`, { seconds: 60 });
    toast(t("joining_opened", { charger, until: when(answer?.until) }));
  } catch (error) {
    toast(t("failed", { detail: error.message }), "error");
  } finally {
    button.disabled = false;
  }
}

function renderTotals() {
  const totals = board.totals;
  if (!totals) return;
  $('[data-total="sessions"]').textContent = String(totals.sessions);
  $('[data-total="energy"]').textContent = `${totals.energy_kwh} kWh`;
  $('[data-total="revenue"]').textContent = board.currency ? `${totals.revenue} ${board.currency}` : String(totals.revenue);
  $('[data-total="charging"]').textContent = String(totals.charging_now);
}

function tick() {
  const now = new Date();
  const clock = $("[data-clock]");
  clock.dateTime = now.toISOString();
  clock.textContent = now.toLocaleString(board.language === "zh" ? "zh-CN" : "en-GB", {
    weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
}

// -- the pile's detail ----------------------------------------------------------------------

async function openDetail(pileId) {
  board.detail = pileId;
  board.history = null;
  $("[data-reason]").value = board.piles.get(pileId)?.maintenance_reason ?? "";
  say("");
  renderDetail();
  const dialog = $("[data-detail]");
  if (!dialog.open) dialog.showModal();
  try {
    const response = await fetch(`/api/v1/piles/${encodeURIComponent(pileId)}`);
    if (!response.ok) throw new Error(await problem(response));
    const detail = await response.json();
    if (board.detail !== pileId) return;
    const { history, ...view } = detail;
    board.history = history;
    putPile(view);
    renderDetail();
  } catch (error) {
    if (board.detail === pileId) say(t("failed", { detail: error.message }), "error");
  }
}

function closeDetail() {
  board.detail = null;
  board.history = null;
  const dialog = $("[data-detail]");
  if (dialog.open) dialog.close();
}

function renderDetail() {
  const pileId = board.detail;
  const view = board.piles.get(pileId);
  const dialog = $("[data-detail]");
  const state = view?.state ?? "offline";
  dialog.dataset.pile = pileId;
  dialog.dataset.state = state;
  $("[data-detail-title]").textContent = `${t("pile")} ${pileId}`;
  const badge = $("[data-detail-state]");
  badge.dataset.state = state;
  badge.textContent = `${ICONS[state] ?? "?"} ${t(`state_${state}`)}`;
  const facts = [
    ["state", t(`state_${state}`)],
    ["power", shown(view?.power_kw, "kW")],
    ["session_energy", shown(view?.session_energy_kwh, "kWh")],
    ["energy", shown(view?.energy_kwh, "kWh")],
    ["linkquality", view?.linkquality === null || view?.linkquality === undefined ? t("none") : `${view.linkquality} / 255`],
    ["last_seen", when(view?.last_seen)],
    ["session", shown(view?.session_id)],
    ["fault", shown(view?.fault)],
    ["maintenance", view?.maintenance ? `${t("yes")}${view.maintenance_reason ? ` · ${view.maintenance_reason}` : ""}` : t("no")],
    ["price", view?.price?.length ? view.price.join(" · ") : t("none")],
  ];
  $("[data-facts]").replaceChildren(...facts.map(([key, value]) => el("div", { "data-fact": key },
    el("dt", {}, t(`fact_${key}`)), el("dd", {}, value))));
  const stop = $('[data-action="stop"]');
  stop.disabled = !view?.session_id;
  if (!stop.dataset.confirming) stop.textContent = t("stop");
  const decommission = $('[data-action="decommission"]');
  decommission.disabled = Boolean(view?.session_id);
  if (!decommission.dataset.confirming) decommission.textContent = t("decommission");
  $('[data-action="maintenance-on"]').hidden = Boolean(view?.maintenance);
  $('[data-action="maintenance-off"]').hidden = !view?.maintenance;
  $("[data-reason]").hidden = Boolean(view?.maintenance);
  renderCharts();
}

function renderCharts() {
  const area = $("[data-charts]");
  const history = board.history;
  if (!history) {
    area.replaceChildren(el("p", { class: "muted" }, t("loading")));
    return;
  }
  area.replaceChildren(
    chart("states", t("chart_states"), stateStrip(history)),
    chart("link", t("chart_link"), sparkline(history.link.map((point) => Number(point.mean)), 255)),
    chart("energy", t("chart_energy"), bars(history.energy_per_day.map((day) => [day.day.slice(5), Number(day.energy_kwh)]))),
    chart("sessions", t("chart_sessions"), rows(history.sessions.slice(0, 5).map((session) =>
      `${when(session.stopped_at)} · ${session.session_id} · ${session.energy_kwh} kWh · ${session.cost}${board.currency ? ` ${board.currency}` : ""}`))),
    chart("faults", t("chart_faults"), rows(history.faults.slice(0, 5).map((fault) =>
      `${when(fault.raised_at)} · ${fault.code} · ${t(`severity_${fault.severity}`)}${fault.cleared_at ? "" : " ⚠"}`))),
  );
}

function chart(name, title, body) {
  return el("figure", { class: "chart", "data-chart": name }, el("figcaption", {}, title), body);
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function empty() {
  return el("p", { class: "muted" }, t("no_history"));
}

function stateStrip(history) {
  // The pile's states since the history begins, as coloured bands up to now.
  const points = history.states;
  if (!points.length) return empty();
  // From the first change the console remembers (at most its history days ago) until now.
  const start = new Date(points[0].at).getTime();
  const end = Math.max(Date.now(), new Date(points[points.length - 1].at).getTime() + 1);
  const span = Math.max(end - start, 1);
  const picture = svg("svg", { viewBox: "0 0 300 24", preserveAspectRatio: "none", class: "strip", role: "img" });
  points.forEach((point, index) => {
    const from = new Date(point.at).getTime();
    const to = index + 1 < points.length ? new Date(points[index + 1].at).getTime() : end;
    const x = ((from - start) / span) * 300;
    const width = Math.max(((to - from) / span) * 300, 0.5);
    const band = svg("rect", { x: x.toFixed(2), y: 0, width: width.toFixed(2), height: 24, fill: STATE_COLOURS[point.state] ?? "#999" });
    band.append(Object.assign(svg("title"), { textContent: `${when(point.at)} · ${t(`state_${point.state}`)}` }));
    picture.append(band);
  });
  return el("div", {}, picture, el("p", { class: "muted since" }, when(points[0].at)));
}

function sparkline(values, most) {
  if (!values.length) return empty();
  const width = 300;
  const height = 48;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const y = (value) => (height - 2 - (Math.min(value, most) / most) * (height - 4)).toFixed(1);
  const points = values.map((value, index) => `${(index * step).toFixed(1)},${y(value)}`).join(" ");
  const picture = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", class: "spark", role: "img" });
  picture.append(svg("polyline", { points: values.length > 1 ? points : `0,${y(values[0])} ${width},${y(values[0])}`, fill: "none", stroke: "currentColor", "stroke-width": 2 }));
  const last = values[values.length - 1];
  picture.append(Object.assign(svg("title"), { textContent: `${last.toFixed(0)} / ${most}` }));
  return picture;
}

function bars(days) {
  if (!days.length) return empty();
  const width = 300;
  const height = 60;
  const most = Math.max(...days.map(([, value]) => value), 0.001);
  const slot = width / days.length;
  const picture = svg("svg", { viewBox: `0 0 ${width} ${height + 12}`, class: "bars", role: "img" });
  days.forEach(([label, value], index) => {
    const tall = (value / most) * height;
    const bar = svg("rect", { x: (index * slot + 2).toFixed(1), y: (height - tall).toFixed(1), width: Math.max(slot - 4, 1).toFixed(1), height: tall.toFixed(1) });
    bar.append(Object.assign(svg("title"), { textContent: `${label}: ${value} kWh` }));
    const caption = svg("text", { x: (index * slot + slot / 2).toFixed(1), y: height + 10, "text-anchor": "middle" });
    caption.textContent = label;
    picture.append(bar, caption);
  });
  return picture;
}

function rows(lines) {
  return lines.length ? el("ul", { class: "rows" }, ...lines.map((line) => el("li", {}, line))) : empty();
}

// -- operator actions -----------------------------------------------------------------------

async function problem(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    return JSON.stringify(body.detail ?? body);
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function call(method, url, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch {
    throw new Error(t("unreachable"));
  }
  if (!response.ok) throw new Error(await problem(response));
  return response.status === 204 ? null : response.json().catch(() => null);
}

async function acknowledge(bulletin, button) {
  button.disabled = true;
  try {
    const answer = await call("POST", `/api/v1/bulletins/${encodeURIComponent(bulletin.id)}/ack`, { who: "operator" });
    board.acked.set(bulletin.id, answer?.acked_by ?? "operator");
    renderBulletins();
    toast(t("ack_sent"));
  } catch (error) {
    button.disabled = false;
    toast(t("failed", { detail: error.message }), "error");
  }
}

async function stopSession(button) {
  const view = board.piles.get(board.detail);
  if (!view?.session_id) return;
  if (!button.dataset.confirming) {
    button.dataset.confirming = "true";
    button.textContent = t("stop_confirm");
    setTimeout(() => { delete button.dataset.confirming; button.textContent = t("stop"); }, CONFIRM_FOR);
    return;
  }
  delete button.dataset.confirming;
  button.textContent = t("stop");
  button.disabled = true;
  try {
    const answer = await call("POST", `/api/v1/sessions/${encodeURIComponent(view.session_id)}/stop`);
    say(answer?.status === "completed" ? t("stop_done") : t("stop_sent"), "ok");
  } catch (error) {
    say(t("failed", { detail: error.message }), "error");
  } finally {
    button.disabled = !board.piles.get(board.detail)?.session_id;
  }
}

async function decommissionPile(button) {
  const pileId = board.detail;
  if (!button.dataset.confirming) {
    button.dataset.confirming = "true";
    button.textContent = t("decommission_confirm");
    setTimeout(() => { delete button.dataset.confirming; button.textContent = t("decommission"); }, CONFIRM_FOR);
    return;
  }
  delete button.dataset.confirming;
  button.textContent = t("decommission");
  button.disabled = true;
  try {
    await call("DELETE", `/api/v1/piles/${encodeURIComponent(pileId)}`, { who: "operator" });
    closeDetail();
    toast(t("decommissioned", { pile: pileId }));
  } catch (error) {
    say(t("failed", { detail: error.message }), "error");
  } finally {
    button.disabled = false;
  }
}

async function setMaintenance(active) {
  const pileId = board.detail;
  const reason = $("[data-reason]").value.trim();
  if (active && !reason) {
    say(t("reason_required"), "error");
    $("[data-reason]").focus();
    return;
  }
  try {
    await call("PUT", `/api/v1/piles/${encodeURIComponent(pileId)}/maintenance`, { active, reason: active ? reason : "", who: "operator" });
    say(active ? t("maintenance_set") : t("maintenance_cleared"), "ok");
  } catch (error) {
    say(t("failed", { detail: error.message }), "error");
  }
}

function say(text, kind = "") {
  const message = $("[data-message]");
  message.textContent = text;
  message.dataset.kind = kind;
}

let toastTimer = null;
function toast(text, kind = "ok") {
  const node = $("[data-toast]");
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 4000);
}

// -- live -----------------------------------------------------------------------------------

let source = null;
let retry = RETRY_FIRST;
let languageChosen = false;

function takeSnapshot(snapshot) {
  board.station = snapshot.station;
  board.currency = snapshot.currency ?? "";
  board.chargers = snapshot.chargers;
  board.piles = new Map(snapshot.piles.map((view) => [view.id, view]));
  board.bulletins = snapshot.bulletins;
  board.totals = snapshot.totals;
  board.registrations = snapshot.registrations ?? [];
  for (const id of board.acked.keys()) {
    if (!board.bulletins.some((bulletin) => bulletin.id === id)) board.acked.delete(id);
  }
  if (!languageChosen) {
    languageChosen = true;
    setLanguage(chosenLanguage(snapshot.language), false);
  } else {
    renderAll();
  }
  document.body.dataset.ready = "true";
}

function connect() {
  source = new EventSource("/api/v1/events");
  source.addEventListener("snapshot", (event) => {
    retry = RETRY_FIRST;
    $('[data-banner="connection"]').hidden = true;
    document.body.dataset.connected = "true";
    takeSnapshot(JSON.parse(event.data));
  });
  source.addEventListener("pile", (event) => putPile(JSON.parse(event.data)));
  source.addEventListener("bulletins", (event) => {
    board.bulletins = JSON.parse(event.data);
    renderBulletins();
  });
  source.addEventListener("piles", (event) => {
    const station = JSON.parse(event.data);
    board.chargers = station.chargers;
    board.piles = new Map(station.piles.map((view) => [view.id, view]));
    renderChargers();
    renderRegistrations();
    if (board.detail && !board.piles.has(board.detail)) closeDetail();
  });
  source.addEventListener("registrations", (event) => {
    board.registrations = JSON.parse(event.data);
    renderRegistrations();
  });
  source.addEventListener("totals", (event) => {
    board.totals = JSON.parse(event.data);
    renderTotals();
  });
  source.addEventListener("error", () => {
    // Our own reconnection: the next stream starts with a fresh snapshot.
    source.close();
    $('[data-banner="connection"]').hidden = false;
    document.body.dataset.connected = "false";
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, RETRY_MOST);
  });
}

function start() {
  setLanguage(chosenLanguage(document.documentElement.lang), false);
  for (const button of $$("[data-lang]")) {
    button.addEventListener("click", () => { languageChosen = true; setLanguage(button.dataset.lang, true); });
  }
  $('[data-action="close"]').addEventListener("click", closeDetail);
  $("[data-detail]").addEventListener("close", () => { board.detail = null; board.history = null; });
  $('[data-action="stop"]').addEventListener("click", (event) => stopSession(event.currentTarget));
  $('[data-action="maintenance-on"]').addEventListener("click", () => setMaintenance(true));
  $('[data-action="maintenance-off"]').addEventListener("click", () => setMaintenance(false));
  $('[data-action="decommission"]').addEventListener("click", (event) => decommissionPile(event.currentTarget));
  $('[data-action="permit-join"]').addEventListener("click", (event) => permitJoin(event.currentTarget));
  tick();
  setInterval(tick, 1000);
  connect();
}

start();
