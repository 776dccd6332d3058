// Entente dashboard: plain JavaScript, no framework, no CDN. Pages are
// drawn from the node's JSON: the node API that scripts use, forwarded
// with the session's key under /ui/api/v1/, and the dashboard's own
// routes under /ui/api/ (sign-in, overview, live events). Live updates
// arrive as server-sent events from /ui/api/events.
"use strict";

const state = { csrf: "", role: "", world: null, es: null, page: "", refresh: null, collections: null, tags: null, sources: null };

// text renders a value for people: nothing for null and undefined, a
// dash for NaN and infinities, JSON for plain objects; never "null",
// "undefined", "NaN" or "[object Object]".
function text(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "–";
  if (typeof v === "object") { try { return JSON.stringify(v); } catch (e) { return ""; } }
  return String(v);
}

// el builds an element; strings become text nodes (never HTML).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : text(v));
  }
  for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : text(k));
  return e;
}
const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// APIError is a refused request: the node's message, and the field and
// column it names, when it does.
class APIError extends Error {
  constructor(status, body) {
    const b = body || {};
    const d = b.details || {};
    super(b.error || b.description || b.title || "the node answered " + status);
    this.status = status;
    this.field = b.field || d.field || "";
    const col = b.column !== undefined ? b.column : d.column;
    this.column = col === undefined || col === null || col === "" ? null : Number(col);
    // The API has no such route (the node is older than the page).
    this.noRoute = status === 404 && b.description === "there is no such resource";
  }
}

async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: {}, credentials: "same-origin" };
  if (init.method !== "GET") init.headers["X-CSRF-Token"] = state.csrf;
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  const r = await fetch("api/" + path, init);
  if (r.status === 204) return null;
  const j = await r.json().catch(() => ({ error: r.statusText }));
  if (r.status === 401 && path !== "login") { showLogin(); throw new APIError(r.status, j); }
  if (!r.ok) throw new APIError(r.status, j);
  return j;
}
// v1 calls the node API (/api/v1/path) as the signed-in key.
const v1 = (path, opts) => api("v1/" + path, opts);
const enc = encodeURIComponent;

function age(t) {
  if (!t) return "";
  const ms = new Date(t).getTime();
  if (!Number.isFinite(ms)) return "";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return Math.round(s) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 86400) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}
function fmt(t) {
  if (!t) return "";
  const d = new Date(t);
  return Number.isFinite(d.getTime()) ? d.toISOString().replace("T", " ").slice(0, 19) : text(t);
}
const objLink = (id, title) => el("a", { href: "#/object/" + enc(id), class: "obj" }, title || id);
const view = () => document.getElementById("view");
function show(...kids) { view().replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false)); }
function fail(e) { show(el("p", { class: "error", role: "alert" }, text(e && e.message || e))); }
const muted = (s) => el("p", { class: "muted" }, s);
// go opens the page of hash, drawing it again when it is the one shown
// (setting the same hash fires no hashchange).
function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

// tlpLabel names a TLP as FIRST's TLP 2.0 does ("TLP:CLEAR"; TLP 1's
// WHITE is CLEAR); tlpBadge shows it in its colour.
function tlpLabel(t) {
  if (!t) return "";
  let s = String(t).toUpperCase().replace(/^TLP:/, "").replace(/_/g, "+");
  if (s === "WHITE") s = "CLEAR";
  return "TLP:" + s;
}
function tlpBadge(t, id) {
  const l = tlpLabel(t);
  if (!l) return el("span", { class: "muted", id }, "no TLP marking");
  return el("span", { class: "tlp tlp-" + l.slice(4).toLowerCase().replace("+", "-"), id }, l);
}

// collections caches the collections the key may use, for their names.
async function collections() {
  if (!state.collections) {
    // The node API lists every collection to admins; the dashboard lists
    // those the key may read or write to others.
    let r;
    try { r = state.role === "admin" ? await v1("collections") : await api("collections"); } catch (e) { r = []; }
    state.collections = Array.isArray(r) ? r : r.collections || [];
  }
  return state.collections;
}
function collectionName(id) {
  const c = (state.collections || []).find((c) => c.id === id || c.alias === id);
  return c ? c.alias || c.title || c.id : text(id);
}

// The STIX types one may browse, in the order analysts look for them.
const browseTypes = [
  ["intrusion-set", "Intrusion sets"], ["malware", "Malware"], ["attack-pattern", "Attack patterns"],
  ["campaign", "Campaigns"], ["threat-actor", "Threat actors"], ["tool", "Tools"], ["vulnerability", "Vulnerabilities"],
  ["report", "Reports"], ["grouping", "Groupings"], ["indicator", "Indicators"], ["sighting", "Sightings"],
  ["observed-data", "Observed data"], ["note", "Notes"], ["opinion", "Opinions"], ["identity", "Identities"],
  ["course-of-action", "Courses of action"], ["infrastructure", "Infrastructure"], ["location", "Locations"],
];
const tlpChoices = ["clear", "green", "amber", "amber+strict", "red"];

// ---- sign-in ----
function showLogin() {
  closeEvents();
  document.getElementById("top").hidden = true;
  view().replaceChildren();
  document.getElementById("login").hidden = false;
  document.getElementById("login-key").focus();
}
async function signedIn(s) {
  state.csrf = s.csrf; state.role = s.role;
  document.getElementById("login").hidden = true;
  document.getElementById("top").hidden = false;
  document.getElementById("who").textContent = s.role + " · " + s.key_id;
  state.collections = null; state.sources = null; state.tags = null;
  navFor(s.role);
  openEvents();
  route();
}
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const k = document.getElementById("login-key");
  const err = document.getElementById("login-error");
  err.textContent = "";
  try {
    const s = await api("login", { method: "POST", body: { key: k.value } });
    k.value = "";
    await signedIn(s);
  } catch (e) { err.textContent = e.message; }
});
document.getElementById("signout").addEventListener("click", async () => {
  try { await api("logout", { method: "POST" }); } catch (e) { /* ended anyway */ }
  state.csrf = ""; location.hash = "";
  showLogin();
});

// ---- live events ----
function openEvents() {
  closeEvents();
  const es = new EventSource("api/events");
  const live = document.getElementById("live");
  es.onopen = () => live.classList.add("on");
  es.onerror = () => live.classList.remove("on");
  const onEvent = (ev) => {
    let d = {};
    try { d = JSON.parse(ev.data); } catch (e) { /* lagged carries a number */ }
    if (ev.type === "alert") flashCountries(d.countries || [], true);
    else if (ev.type === "sighting") flashCountries(d.countries || [], false);
    if (state.refresh && (!state.refreshIf || state.refreshIf(ev.type, d))) scheduleRefresh();
  };
  for (const t of ["sighting", "alert", "lagged"]) es.addEventListener(t, onEvent);
  state.es = es;
}
function closeEvents() { if (state.es) { state.es.close(); state.es = null; } }
let refreshTimer = 0;
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = 0; if (state.refresh) state.refresh(); }, 150);
}
// flashCountries marks countries on the maps shown at once, before the
// refreshed counts arrive.
function flashCountries(ccs, alert) {
  if (state.page !== "overview" && state.page !== "alerts") return;
  for (const cc of ccs) {
    for (const p of document.querySelectorAll('svg.map path[data-cc="' + cc + '"]')) {
      if (alert) p.classList.add("alerted");
      else if (!p.classList.contains("alerted") && !p.classList.contains("s1")) p.classList.add("s1");
      p.classList.add("flash");
    }
  }
}

// ---- map ----
// drawMap returns an SVG map; shade(cc) gives the classes of a country.
function drawMap(w, shade, title) {
  const m = svg("svg", { class: "map", viewBox: "0 20 " + w.width + " " + (w.height - 110), role: "img", "aria-label": title, id: "map" });
  for (const [cc, c] of Object.entries(w.countries)) {
    const p = svg("path", { d: c.d, "data-cc": cc });
    const cls = shade(cc);
    if (cls) p.setAttribute("class", cls);
    const t = svg("title", {});
    t.textContent = c.n + " (" + cc + ")";
    p.append(t);
    m.append(p);
  }
  return m;
}

// ---- charts ----
// niceMax rounds m up to 1, 2 or 5 times a power of ten.
function niceMax(m) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(1, m))));
  for (const f of [1, 2, 5, 10]) if (f * p >= m) return f * p;
  return 10 * p;
}
// barChart draws stacked bars over time with labelled axes: time along
// the bottom, counts up the left. bars: [{t, v: [n…], title}], one class
// per series.
function barChart(bars, cls, opts) {
  const W = 640, H = 180, L = 48, R = 10, T = 12, B = 42, pw = W - L - R, ph = H - T - B;
  const c = svg("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": opts.label });
  if (opts.id) c.id = opts.id;
  const sum = (b) => b.v.reduce((a, x) => a + (Number(x) || 0), 0);
  const top = niceMax(Math.max(1, ...bars.map(sum)));
  const ticks = top <= 5 ? Array.from({ length: top + 1 }, (_, i) => i) : [0, top / 2, top];
  const label = (x, y, s, anchor, cl) => { const t = svg("text", { x, y, "text-anchor": anchor, class: cl || "tick" }); t.textContent = s; return t; };
  for (const v of ticks) {
    const y = T + ph - (ph * v) / top;
    c.append(svg("line", { x1: L, x2: L + pw, y1: y, y2: y, class: v ? "grid" : "axis" }), label(L - 6, y + 4, String(v), "end"));
  }
  c.append(svg("line", { x1: L, x2: L, y1: T, y2: T + ph, class: "axis" }));
  const bw = pw / Math.max(1, bars.length);
  bars.forEach((b, i) => {
    let y = T + ph;
    b.v.forEach((v, k) => {
      const h = (ph * (Number(v) || 0)) / top;
      if (h <= 0) return;
      y -= h;
      const r = svg("rect", { class: cls[k] || "s", x: L + i * bw + bw * 0.1, y, width: Math.max(1, bw * 0.8), height: h });
      const tt = svg("title", {}); tt.textContent = b.title || ""; r.append(tt);
      c.append(r);
    });
  });
  // Time ticks: at most six, as hours within two days, else as dates.
  const times = bars.map((b) => new Date(b.t).getTime()).filter(Number.isFinite);
  const span = times.length ? times[times.length - 1] - times[0] : 0;
  const step = Math.max(1, Math.ceil(bars.length / 6));
  for (let i = 0; i < bars.length; i += step) {
    const d = new Date(bars[i].t);
    if (!Number.isFinite(d.getTime())) continue;
    const iso = d.toISOString();
    const s = span <= 2 * 86400e3 ? iso.slice(11, 16) : iso.slice(5, 10);
    const x = L + i * bw + bw / 2;
    c.append(svg("line", { x1: x, x2: x, y1: T + ph, y2: T + ph + 4, class: "axis" }), label(x, T + ph + 16, s, "middle"));
  }
  if (times.length && span <= 2 * 86400e3) c.append(label(L, H - 4, new Date(times[0]).toISOString().slice(0, 10), "start"));
  c.append(label(L + pw, H - 4, opts.xTitle || "time", "end", "axis-title"));
  const yt = label(12, T + ph / 2, opts.yTitle || "count", "middle", "axis-title");
  yt.setAttribute("transform", "rotate(-90 12 " + (T + ph / 2) + ")");
  c.append(yt);
  return c;
}

// ---- pages ----
const pages = {};

pages.overview = async (arg, params) => {
  const win = params.get("window") || "24h";
  const until = params.get("until") || "";
  const [o, w] = await Promise.all([api("overview?window=" + encodeURIComponent(win) + "&buckets=24" + (until ? "&until=" + encodeURIComponent(until) : "")), world()]);
  const maxS = Math.max(1, ...Object.values(o.countries).map((c) => c.sightings));
  const map = drawMap(w, (cc) => {
    const c = o.countries[cc];
    if (!c) return "";
    if (c.alerts > 0) return c.alerts > 1 ? "alerted a2" : "alerted";
    if (c.sightings > 0) return "s" + Math.min(3, 1 + Math.floor((3 * c.sightings) / (maxS + 1)));
    return "";
  }, "Sightings and alerts by country");
  for (const p of map.querySelectorAll("path")) {
    const c = o.countries[p.dataset.cc];
    if (c) { p.dataset.sightings = c.sightings; p.dataset.alerts = c.alerts; }
  }
  if (o.replaying) setTimeout(() => { if (state.page === "overview") scheduleRefresh(); }, 3000);
  const open = (o.alerts.new || 0) + (o.alerts.escalated || 0);
  const sel = el("select", { id: "window", onchange: (e) => { location.hash = "#/overview?window=" + e.target.value + (until ? "&until=" + encodeURIComponent(until) : ""); } },
    ...["1h", "6h", "24h", "168h", "720h"].map((v) => el("option", { value: v, selected: v === win }, { "168h": "7 days", "720h": "30 days" }[v] || v)));
  const tl = barChart(o.timeline.map((b) => ({ t: b.start, v: [b.sightings, b.alerts],
    title: fmt(b.start) + ": " + b.sightings + " sightings, " + b.alerts + " alerts" })), ["s", "a"],
    { label: "Sightings and alerts over time", yTitle: "count", xTitle: "time (UTC)", id: "timeline" });
  const top = Object.entries(o.countries).sort((a, b) => b[1].alerts - a[1].alerts || b[1].sightings - a[1].sightings).slice(0, 10);
  show(
    el("div", { class: "toolbar" }, el("h1", {}, "Overview"), el("label", { for: "window" }, "Window"), sel,
      // Replayed historical logs are seen in the past: the window moves to
      // the time of the data, and back to now.
      until ? el("a", { id: "window-now", href: "#/overview?window=" + encodeURIComponent(win) }, "back to now")
        : (o.latest && new Date(o.latest) < new Date(o.since) ? el("a", { id: "window-latest", href: "#/overview?window=" + encodeURIComponent(win) + "&until=" + encodeURIComponent(o.latest) }, "show the latest data (" + fmt(o.latest) + ")") : null)),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("b", { id: "count-sightings" }, o.sightings), "sightings"),
      el("div", { class: "card" }, el("b", { id: "count-open" }, open), "open alerts"),
      el("div", { class: "card" }, el("b", {}, o.alerts.acknowledged || 0), "acknowledged"),
      el("div", { class: "card" }, el("b", {}, o.alerts.resolved || 0), "resolved"),
      el("div", { class: "card" }, el("b", {}, Object.keys(o.countries).length), "countries"),
      el("div", { class: "card" }, el("b", {}, o.threats), "threats tracked")),
    o.replaying ? el("p", { class: "muted", id: "replaying" }, "Correlation is replaying the stored sightings; counts will grow.") : null,
    el("div", { class: "panel" }, map,
      el("div", { class: "legend" }, el("span", {}, el("i", { class: "lg-s" }), "sightings"), el("span", {}, "red: countries with open alerts"))),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h2", {}, "Timeline"), tl,
        el("div", { class: "legend" }, el("span", {}, el("i", { class: "lg-t" }), "sightings"), el("span", {}, el("i", { class: "lg-a" }), "alerts")),
        el("p", { class: "muted" }, fmt(o.since) + " – " + fmt(o.until) + " UTC")),
      el("div", { class: "panel" }, el("h2", {}, "Countries"), el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Country"), el("th", {}, "Sightings"), el("th", {}, "Open alerts"))),
        el("tbody", {}, top.map(([cc, c]) => el("tr", {}, el("td", {}, (w.countries[cc] ? w.countries[cc].n + " " : "") + "(" + cc + ")"), el("td", {}, c.sightings), el("td", {}, c.alerts))))))));
};

pages.alerts = async (arg, params) => {
  if (arg) return alertPage(arg);
  const status = params.get("status") || "";
  const all = (await api("alerts" + (status ? "?status=" + encodeURIComponent(status) : ""))).alerts || [];
  // The most recently changed first; a long list is cut (filter to see the rest).
  const alerts = all.slice(0, 1000);
  const sel = el("select", { id: "status", "aria-label": "status", onchange: (e) => { location.hash = "#/alerts" + (e.target.value ? "?status=" + e.target.value : ""); } },
    ...["", "new", "escalated", "acknowledged", "resolved"].map((v) => el("option", { value: v, selected: v === status }, v || "any status")));
  show(
    el("div", { class: "toolbar" }, el("h1", {}, "Alerts"), sel, el("span", { class: "muted" }, all.length > alerts.length ? "the " + alerts.length + " most recent of " + all.length + " alerts" : all.length + " alerts")),
    el("div", { class: "panel" }, el("table", { id: "alerts-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Tier"), el("th", {}, "Status"), el("th", {}, "Organisations"), el("th", {}, "Countries"), el("th", {}, "Age"), el("th", {}, "Threat"), el("th", { class: "hide-narrow" }, "Values"))),
      el("tbody", {}, (alerts || []).map((a) => el("tr", { "data-id": a.id, "data-status": a.status },
        el("td", {}, el("a", { href: "#/alerts/" + encodeURIComponent(a.id) }, el("span", { class: "tier " + a.tier }, a.tier))),
        el("td", { class: "status-" + a.status }, a.status),
        el("td", {}, a.organisations),
        el("td", {}, (a.countries || []).join(" ")),
        el("td", { title: fmt(a.first_seen) }, age(a.first_seen)),
        el("td", { class: "wrap threat" }, objLink(a.threat, threatName(a))),
        el("td", { class: "hide-narrow wrap" }, valuesOf(a))))))));
};

// threatName names an alert's threat: the malware, intrusion set or
// campaign behind it, else the values sighted, else its id.
function threatName(a) {
  const vals = a.values || [];
  if (a.threat_name) return a.threat_name + (a.threat_type ? " (" + a.threat_type + ")" : "");
  if (vals.length) return vals.slice(0, 3).join(", ") + (vals.length > 3 ? " and " + (vals.length - 3) + " more" : "");
  return a.threat;
}
function valuesOf(a) {
  const vals = a.values || [];
  return vals.length ? vals.slice(0, 5).join(", ") + (vals.length > 5 ? " …" : "") : "";
}

async function alertPage(id) {
  const [d, w] = await Promise.all([api("alerts/" + encodeURIComponent(id)), world()]);
  const ccs = new Set(d.countries || []);
  const act = async (action) => {
    try { await api("alerts/" + encodeURIComponent(id) + "/" + action, { method: "POST", body: { note: "" } }); route(); }
    catch (e) { document.getElementById("alert-error").textContent = e.message; }
  };
  const canAck = d.status === "new" || d.status === "escalated";
  show(
    el("div", { class: "toolbar" }, el("h1", {}, "Alert"), el("span", { class: "tier " + d.tier }, d.tier),
      el("span", { id: "alert-status", class: "status-" + d.status }, d.status),
      el("button", { id: "ack-btn", class: "primary", type: "button", disabled: !canAck, onclick: () => act("ack") }, "Acknowledge"),
      el("button", { id: "resolve-btn", type: "button", disabled: d.status === "resolved", onclick: () => act("resolve") }, "Resolve"),
      el("span", { id: "alert-error", class: "error", role: "alert" })),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("b", {}, d.organisations), "organisations"),
      el("div", { class: "card" }, el("b", {}, ccs.size), "countries"),
      el("div", { class: "card" }, el("b", {}, age(d.first_seen)), "age"),
      el("div", { class: "card" }, el("b", {}, age(d.last_seen)), "since last seen")),
    el("p", { class: "wrap", id: "alert-threat" }, "Alert on ", objLink(d.threat, threatName(d)),
      (d.values || []).length ? el("span", {}, " — values sighted: ", (d.values || []).join(", ")) : null,
      el("br"), el("span", { class: "muted" }, "alert ", d.id, d.rule ? " · " + d.rule : "")),
    el("div", { class: "panel" }, drawMap(w, (cc) => (ccs.has(cc) ? "alerted" : ""), "Countries of the alert")),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h2", {}, "Sightings behind the alert"), el("table", { id: "alert-sightings" },
        el("thead", {}, el("tr", {}, el("th", {}, "Sighting"), el("th", {}, "Countries"), el("th", {}, "Last seen"))),
        el("tbody", {}, (d.sightings || []).map((s) => el("tr", {}, el("td", { class: "wrap" }, objLink(s.id)), el("td", {}, s.countries.join(" ")), el("td", {}, fmt(s.last_seen || s.first_seen))))))),
      el("div", { class: "panel" }, el("h2", {}, "Related objects of the threat"), edgeTable(d.related))),
    el("div", { class: "panel" }, el("h2", {}, "History"), el("table", {},
      el("tbody", {}, (d.history || []).map((h) => el("tr", {}, el("td", {}, fmt(h.at)), el("td", {}, h.to || h.status || ""), el("td", {}, h.by || ""), el("td", {}, h.note || "")))))));
}

function edgeTable(edges) {
  if (!edges || edges.length === 0) return el("p", { class: "muted" }, "none");
  return el("table", {}, el("tbody", {}, edges.map((e) => el("tr", {},
    el("td", {}, e.outgoing ? e.type + " →" : "← " + e.type),
    el("td", { class: "wrap" }, objLink(e.other)),
    el("td", { class: "wrap hide-narrow" }, objLink(e.ref))))));
}

// ---- search and browse ----
// resultsTable lists search results (GET /api/v1/search), each opening
// its object's page.
function resultsTable(id, results) {
  return el("table", { id },
    el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Type"), el("th", {}, "TLP"),
      el("th", { class: "hide-narrow" }, "Description"), el("th", { class: "hide-narrow" }, "Collection"), el("th", { class: "hide-narrow" }, "Modified"))),
    el("tbody", {}, results.map((r) => el("tr", { "data-id": r.id },
      el("td", { class: "wrap" }, objLink(r.id, r.title || r.id)),
      el("td", {}, r.type),
      el("td", {}, tlpBadge(r.tlp)),
      el("td", { class: "hide-narrow desc" }, clip(r.description, 160)),
      el("td", { class: "hide-narrow" }, collectionName(r.collection)),
      el("td", { class: "hide-narrow" }, fmt(r.modified))))));
}
function clip(s, n) { s = text(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
function typeSelect(id, value, anyLabel) {
  return el("select", { id, "aria-label": "type" }, el("option", { value: "" }, anyLabel),
    browseTypes.map(([t, name]) => el("option", { value: t, selected: t === value }, name)));
}
function tlpSelect(id, value, anyLabel) {
  return el("select", { id, "aria-label": "TLP" }, anyLabel ? el("option", { value: "" }, anyLabel) : null,
    tlpChoices.map((t) => el("option", { value: t, selected: t === value }, tlpLabel(t))));
}
function searchQuery(q, type, tlp, cursor, limit, filters) {
  const u = new URLSearchParams();
  u.set("q", q);
  if (type) u.set("type", type);
  if (tlp) u.set("tlp", tlp);
  for (const [k, v] of Object.entries(filters || {})) if (v) u.set(k, v);
  u.set("limit", String(limit || 50));
  if (cursor) u.set("cursor", cursor);
  return "search?" + u.toString();
}
// sources lists the identities the key may read (the first 200, by
// name), for the search's source filter.
async function sources() {
  if (!state.sources) {
    state.sources = v1(searchQuery("", "identity", "", "", 200)).then((p) => (p.results || []).map((r) => [r.id, r.title || r.name || r.id])
      .sort((a, b) => a[1].localeCompare(b[1]))).catch(() => { state.sources = null; return []; });
  }
  return state.sources;
}
// dayStart and dayAfter turn a date control's day into the RFC 3339
// bounds of the API's since (inclusive) and until (exclusive), so that
// "to" includes its day.
const dayStart = (d) => d ? d + "T00:00:00Z" : "";
function dayAfter(d) {
  if (!d) return "";
  const t = new Date(d + "T00:00:00Z");
  return Number.isFinite(t.getTime()) ? new Date(t.getTime() + 86400000).toISOString().replace(".000Z", "Z") : "";
}

// filterBar is the collection, source and modified from/to filters of
// the search and browse pages (ids prefix-collection, prefix-source,
// prefix-from, prefix-to), read from and kept in the page's address as
// collection, source, from and to; query is what GET /api/v1/search
// takes for them.
function filterBar(prefix, params, colls, srcs) {
  const coll = params.get("collection") || "", source = params.get("source") || "", from = params.get("from") || "", to = params.get("to") || "";
  const cs = el("select", { id: prefix + "-collection", "aria-label": "collection" }, el("option", { value: "" }, "any collection"),
    colls.map((c) => el("option", { value: c.alias || c.id, selected: !!coll && (c.alias === coll || c.id === coll) }, c.alias || c.title || c.id)));
  const ss = el("select", { id: prefix + "-source", "aria-label": "source" }, el("option", { value: "" }, "any source"),
    srcs.map(([id, name]) => el("option", { value: id, selected: id === source }, clip(name, 40))),
    source && !srcs.some(([id]) => id === source) ? el("option", { value: source, selected: true }, source) : null);
  const fromIn = el("input", { id: prefix + "-from", type: "date", value: from, "aria-label": "modified from (UTC)" });
  const toIn = el("input", { id: prefix + "-to", type: "date", value: to, "aria-label": "modified to (UTC, inclusive)" });
  return {
    controls: [["collection", cs], ["source", ss], ["from", fromIn], ["to", toIn]],
    bar: el("div", { class: "toolbar filters", id: prefix + "-filters" },
      el("label", { for: prefix + "-collection" }, "Collection"), cs, el("label", { for: prefix + "-source" }, "Source"), ss,
      el("label", { for: prefix + "-from" }, "Modified from"), fromIn, el("label", { for: prefix + "-to" }, "to"), toIn),
    query: { collection: coll, source, since: dayStart(from), until: dayAfter(to) },
    address: { collection: coll, source, from, to },
    any: !!(coll || source || from || to),
  };
}
// address is the query part of a page's address from its controls
// ([name, control] pairs, empty ones left out) and a cursor.
function address(controls, cursor) {
  const u = new URLSearchParams();
  for (const [k, c] of controls) if (c.value.trim()) u.set(k, c.value.trim());
  if (cursor) u.set("cursor", cursor);
  return u.toString();
}

pages.search = async (arg, params) => {
  const q = params.get("q") || "", type = params.get("type") || "", tlp = params.get("tlp") || "", cursor = params.get("cursor") || "";
  const [colls, srcs] = await Promise.all([collections(), sources()]);
  const fb = filterBar("search", params, colls, srcs);
  const input = el("input", { id: "search-input", type: "search", value: q, placeholder: "a name, alias, ATT&CK or CVE id, value, description…", "aria-label": "search" });
  const ts = typeSelect("search-type", type, "any type"), ls = tlpSelect("search-tlp", tlp, "any TLP");
  const controls = [["q", input], ["type", ts], ["tlp", ls], ...fb.controls];
  const go = (extra) => { location.hash = "#/search?" + address(controls, extra); };
  for (const [, c] of controls.slice(1)) c.addEventListener("change", () => go());
  const form = el("form", { class: "toolbar", role: "search", onsubmit: (e) => { e.preventDefault(); go(); } },
    el("h1", {}, "Search"), input, ts, ls, el("button", { type: "submit", class: "primary" }, "Search"));
  if (!q && !type && !tlp && !fb.any) { show(form, fb.bar, muted("Full-text search over names, aliases, descriptions, labels, external ids (T1566, CVE-…) and observable values.")); input.focus(); return; }
  let page;
  try {
    page = await v1(searchQuery(q, type, tlp, cursor, 50, fb.query));
  } catch (e) {
    if (e.noRoute && q) return searchLegacy(form, q);
    show(form, fb.bar, el("p", { class: "error", role: "alert" }, e.message)); return;
  }
  const res = page.results || [];
  const first = new URLSearchParams(Object.entries({ q, type, tlp, ...fb.address }).filter(([, v]) => v)).toString();
  show(form, fb.bar, el("div", { class: "panel" }, res.length === 0 ? el("p", { id: "search-none" }, "Nothing found.") : resultsTable("search-results", res),
    el("p", {}, cursor ? el("a", { href: "#/search?" + first }, "First page") : null, " ",
      page.next ? el("a", { id: "search-next", href: "#", onclick: (e) => { e.preventDefault(); go(page.next); } }, "Next page") : null)));
};

// browse lists the objects of one type, newest first, filtered as the
// search is (TLP, collection, source, modified from/to); switching type
// keeps the filters.
pages.browse = async (arg, params) => {
  const type = arg || "intrusion-set", tlp = params.get("tlp") || "", cursor = params.get("cursor") || "";
  const [colls, srcs] = await Promise.all([collections(), sources()]);
  const fb = filterBar("browse", params, colls, srcs);
  const ls = tlpSelect("browse-tlp", tlp, "any TLP");
  const controls = [["tlp", ls], ...fb.controls];
  const href = (t, c) => { const a = address(controls, c); return "#/browse/" + enc(t) + (a ? "?" + a : ""); };
  for (const [, c] of controls) c.addEventListener("change", () => { location.hash = href(type); });
  const tabs = el("nav", { class: "tabs", "aria-label": "object types" }, browseTypes.map(([t, name]) =>
    el("a", { href: href(t), class: t === type ? "active" : "", "aria-current": t === type ? "page" : null, "data-type": t }, name)));
  const name = (browseTypes.find(([t]) => t === type) || [type, type])[1];
  const head = el("div", { class: "toolbar" }, el("h1", {}, name), el("label", { for: "browse-tlp" }, "TLP"), ls,
    type === "indicator" ? el("a", { href: "#/indicator/new" }, "New indicator") : null,
    ["report", "grouping"].includes(type) ? el("a", { href: "#/report/new" }, "New " + type) : null);
  let page;
  try {
    page = await v1(searchQuery("", type, tlp, cursor, 100, fb.query));
  } catch (e) {
    show(head, fb.bar, tabs, el("p", { class: "error", role: "alert" }, e.message)); return;
  }
  const res = page.results || [];
  const none = tlp || fb.any ? "No " + name.toLowerCase() + " matches these filters." : "No " + name.toLowerCase() + " on this node.";
  show(head, fb.bar, tabs,
    el("div", { class: "panel" }, res.length === 0 ? el("p", { id: "browse-none" }, none) : resultsTable("browse-results", res),
      el("p", {}, cursor ? el("a", { href: href(type) }, "First page") : null, " ",
        page.next ? el("a", { id: "browse-next", href: href(type, page.next) }, "Next page") : null)));
};

// ---- MISP taxonomy tags ----
// taxonomyTags lists the machine tags of the node's MISP taxonomies
// (GET /api/v1/taxonomies), each with what it means: namespace:predicate,
// or namespace:predicate="value" when the predicate has values.
async function taxonomyTags() {
  if (!state.tags) {
    state.tags = v1("taxonomies").then((r) => (r.taxonomies || []).flatMap((t) => (t.predicates || []).flatMap((p) =>
      (p.values || []).length ? p.values.map((v) => ({ tag: t.namespace + ":" + p.value + '="' + v.value + '"', what: [p.expanded || p.value, v.expanded || v.value].join(": ") }))
        : [{ tag: t.namespace + ":" + p.value, what: p.expanded || p.value }]))).catch(() => { state.tags = null; return []; });
  }
  return state.tags;
}
// tagPicker suggests the taxonomy tags that match what is typed in
// input (in the datalist list, at most 50), and says in hint what the
// tag typed means, or that it is a free label.
function tagPicker(input, list, hint) {
  const free = hint.textContent;
  const update = async () => {
    const tags = await taxonomyTags();
    const q = input.value.trim().toLowerCase();
    const hits = tags.filter((t) => !q || t.tag.toLowerCase().includes(q)).slice(0, 50);
    list.replaceChildren(...hits.map((t) => el("option", { value: t.tag, label: t.what })));
    const exact = tags.find((t) => t.tag === input.value.trim());
    hint.textContent = exact ? exact.tag + ": " + exact.what : q && tags.some((t) => t.tag.toLowerCase().startsWith(q.split(/[:=]/)[0] + ":")) ? "a tag of a known taxonomy must be one it lists" : free;
  };
  input.addEventListener("input", update);
  input.addEventListener("focus", update);
}

// ---- object page ----
const opinions = ["strongly-disagree", "disagree", "neutral", "agree", "strongly-agree"];

// shown renders a field's value in a version diff; a long one is cut,
// with the whole behind a disclosure.
function shown(v) {
  if (v === null || v === undefined) return el("span", { class: "muted" }, "(absent)");
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 240 ? el("details", {}, el("summary", {}, clip(s, 200)), s) : s;
}
// capped is a table of rows drawn by row, the first 50, with a button
// that shows the rest.
function capped(id, rows, row) {
  const body = el("tbody", {}, rows.slice(0, 50).map(row));
  const more = rows.length > 50 ? el("button", { type: "button", onclick: (e) => { body.replaceChildren(...rows.map(row)); e.target.remove(); } }, "Show all " + rows.length) : null;
  return el("div", {}, el("table", { id }, body), more);
}

pages.object = async (id, params) => {
  let d;
  let w = null;
  try { [d, , w] = await Promise.all([v1("objects/" + enc(id)), collections(), world().catch(() => null)]); }
  catch (e) { if (e.noRoute) return objectLegacy(id); throw e; }
  const o = d.object || {};
  const type = o.type || id.split("--")[0];
  const title = d.title || o.name || o.value || id;
  const msg = el("p", { id: "action-status", role: "status", class: "muted" }, params && params.get("done") ? params.get("done") : "");
  const act = async (btn, path, body, done) => {
    btn.disabled = true;
    try {
      await v1("objects/" + enc(id) + "/" + path, { method: "POST", body });
      go("#/object/" + enc(id) + "?done=" + enc(done));
    } catch (e) { msg.className = "error"; msg.textContent = e.message; btn.disabled = false; }
  };
  const so = d.sightings || {};
  const byCountry = Object.entries(so.by_country || {}).sort((a, b) => b[1] - a[1]);
  const byDay = so.by_day || [];
  const rel = d.relationships || {};
  const out = rel.out || [], inn = rel.in || [];
  const labels = o.labels || [];
  // The newest version first, with what changed since the one before.
  const versions = (d.versions || []).map((v, i) => [v, i]).sort((a, b) => (new Date(b[0].modified) - new Date(a[0].modified)) || b[1] - a[1]).map(([v]) => v);
  const lifetime = d.valid_from || d.valid_until ? fmt(d.valid_from) + " – " + (d.valid_until ? fmt(d.valid_until) : "no end") : "";

  const note = el("textarea", { id: "note-content", rows: "3", "aria-label": "note" });
  const opinion = el("select", { id: "opinion-value", "aria-label": "opinion" }, opinions.map((v) => el("option", { value: v, selected: v === "neutral" }, v.replace("-", " "))));
  const explanation = el("input", { id: "opinion-explanation", type: "text", "aria-label": "explanation of the opinion", placeholder: "why" });
  const label = el("input", { id: "label-add", type: "text", list: "tag-suggestions", autocomplete: "off", "aria-label": "label to add", "aria-describedby": "label-hint", placeholder: "a label or taxonomy tag, e.g. tlp:green or admiralty-scale:source-reliability=\"b\"" });
  const tagList = el("datalist", { id: "tag-suggestions" });
  const labelHint = el("span", { id: "label-hint", class: "muted small" }, "MISP taxonomy tags are suggested as you type; other labels are free.");
  tagPicker(label, tagList, labelHint);
  const reason = el("input", { id: "fp-reason", type: "text", "aria-label": "why it is a false positive", placeholder: "why it is wrong" });

  show(
    el("div", { class: "toolbar" }, el("h1", { class: "wrap", id: "object-title" }, title), el("span", { class: "tier", id: "object-type" }, type), tlpBadge(d.tlp, "object-tlp"),
      d.revoked ? el("span", { class: "revoked" }, "revoked") : null),
    el("p", { class: "wrap muted" }, el("code", { id: "object-id" }, id)),
    el("p", { class: "toolbar" }, el("a", { id: "graph-link", href: "#/graph/" + enc(id) }, "Relationship graph"),
      type === "indicator" ? el("a", { id: "edit-link", href: "#/indicator/" + enc(id) }, "Edit indicator") : null,
      ["intrusion-set", "malware", "campaign", "tool"].includes(type) ? el("a", { id: "matrix-link", href: "#/matrix?filter=" + enc(id) + "&name=" + enc(title) }, "ATT&CK matrix of this " + type) : null,
      el("a", { href: "#/report/new?refs=" + enc(id) }, "Group into a new report")),
    o.description ? el("div", { class: "panel desc-full" }, o.description) : null,
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("b", {}, tlpLabel(d.tlp) ? tlpLabel(d.tlp).slice(4) : "none"), "TLP"),
      el("div", { class: "card" }, el("b", { id: "object-confidence" }, d.confidence === null || d.confidence === undefined ? "–" : d.confidence), "confidence"),
      el("div", { class: "card" }, el("b", { id: "object-residency" }, [].concat(d.residency || []).join(", ") || "–"), "residency"),
      el("div", { class: "card" }, el("b", {}, (so.by_day || []).reduce((a, x) => a + (Number(x.count) || 0), 0)), "sightings"),
      el("div", { class: "card" }, el("b", {}, (d.alerts || []).length), "alerts")),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h2", {}, "Markings"),
        (d.markings || []).length ? el("ul", { id: "object-markings" }, d.markings.map((m) => el("li", { class: "wrap" }, m.name && m.name !== "marking-definition" ? m.name : objLink(m.id, "a marking statement")))) : el("p", { class: "muted" }, tlpLabel(d.tlp) ? tlpLabel(d.tlp) + " (the collection's default)" : "no marking"),
        el("h2", {}, "Sources"), (d.sources || []).length ? el("ul", { id: "object-sources" }, d.sources.map((s) => el("li", {}, objLink(s.id, s.name || s.id)))) : muted("this node"),
        el("h2", {}, "Lifetime"), lifetime ? el("p", { id: "object-lifetime" }, lifetime) : muted("no validity period"),
        el("h2", {}, "Labels"), labels.length ? el("ul", { id: "object-labels", class: "labels" }, labels.map((l) => el("li", {}, l,
          el("button", { type: "button", class: "small", "aria-label": "remove label " + l, onclick: (e) => act(e.target, "labels", { add: [], remove: [l] }, "label removed") }, "×")))) : muted("none")),
      el("div", { class: "panel" }, el("h2", {}, "Warninglists"),
        (d.warninglists || []).length ? el("ul", { id: "object-warninglists" }, d.warninglists.map((w) => el("li", {}, typeof w === "string" ? w : w.name || w.list || JSON.stringify(w)))) : muted("on no warninglist"),
        el("h2", {}, "Alerts it supports"),
        (d.alerts || []).length ? el("table", { id: "object-alerts" }, el("tbody", {}, d.alerts.map((a) => el("tr", {},
          el("td", {}, el("a", { href: "#/alerts/" + enc(a.id) }, el("span", { class: "tier " + a.tier }, a.tier || "alert"))),
          el("td", { class: "status-" + a.status }, a.status))))) : muted("none"))),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h2", {}, "Sightings by time"),
        byDay.length ? barChart(byDay.map((b) => ({ t: b.day, v: [b.count], title: b.day + ": " + b.count + " sightings" })), ["s"], { label: "Sightings by day", yTitle: "sightings", xTitle: "day (UTC)", id: "object-sightings-chart" }) : muted("never sighted")),
      el("div", { class: "panel" }, el("h2", {}, "Sightings by country"),
        byCountry.length && w ? drawMap(w, (cc) => {
          const n = (so.by_country || {})[cc];
          return n ? "s" + Math.min(3, 1 + Math.floor((3 * n) / (byCountry[0][1] + 1))) : "";
        }, "Sightings of the object by country") : null,
        byCountry.length ? el("table", { id: "object-countries" }, el("thead", {}, el("tr", {}, el("th", {}, "Country"), el("th", {}, "Sightings"))),
          el("tbody", {}, byCountry.map(([cc, n]) => el("tr", {}, el("td", {}, w && w.countries[cc] ? w.countries[cc].n + " (" + cc + ")" : cc), el("td", {}, n))))) : muted("never sighted"))),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h2", {}, "Relationships from it"),
        out.length ? capped("rel-out", out, (r) => el("tr", {}, el("td", {}, r.relationship_type + " →"),
          el("td", { class: "wrap" }, objLink(r.target.id, r.target.title || r.target.id)), el("td", { class: "muted" }, r.target.type))) : muted("none")),
      el("div", { class: "panel" }, el("h2", {}, "Relationships to it"),
        inn.length ? capped("rel-in", inn, (r) => el("tr", {}, el("td", { class: "wrap" }, objLink(r.source.id, r.source.title || r.source.id)),
          el("td", { class: "muted" }, r.source.type), el("td", {}, "→ " + r.relationship_type))) : muted("none"))),
    el("div", { class: "panel" }, el("h2", {}, "Versions"), versions.length ? el("div", { id: "object-versions" }, versions.map((v, i) => el("details", { open: i === 0 },
      el("summary", {}, fmt(v.modified), " — ", i === versions.length - 1 ? "the first version" : [(v.changes || []).length, " change", (v.changes || []).length === 1 ? "" : "s"]),
      i < versions.length - 1 && (v.changes || []).length ? el("table", { class: "diff" }, el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Was"), el("th", {}, "Became"))),
        el("tbody", {}, v.changes.map((c) => el("tr", {}, el("td", {}, c.field), el("td", { class: "del wrap" }, shown(c.from)), el("td", { class: "ins wrap" }, shown(c.to)))))) : muted("the first version")))) : muted("one version")),
    el("div", { class: "panel", id: "object-actions" }, el("h2", {}, "Annotate and act"), msg,
      el("div", { class: "row" },
        el("form", { class: "act", onsubmit: (e) => { e.preventDefault(); if (note.value.trim()) act(e.submitter || e.target.querySelector("button"), "notes", { content: note.value.trim() }, "note added"); } },
          el("label", { for: "note-content" }, "Note"), note, el("button", { id: "note-add", type: "submit" }, "Add note")),
        el("form", { class: "act", onsubmit: (e) => { e.preventDefault(); act(e.target.querySelector("button"), "opinions", { opinion: opinion.value, explanation: explanation.value.trim() }, "opinion added"); } },
          el("label", { for: "opinion-value" }, "Opinion"), opinion, explanation, el("button", { id: "opinion-add", type: "submit" }, "Add opinion")),
        el("form", { class: "act", onsubmit: (e) => { e.preventDefault(); const l = label.value.trim(); if (l) act(e.target.querySelector("button"), "labels", { add: [l], remove: [] }, "label added"); } },
          el("label", { for: "label-add" }, "Label"), label, tagList, labelHint, el("button", { id: "label-add-btn", type: "submit" }, "Add label")),
        el("form", { class: "act", onsubmit: (e) => { e.preventDefault(); act(e.target.querySelector("button"), "false-positive", { reason: reason.value.trim() }, "marked a false positive"); } },
          el("label", { for: "fp-reason" }, "False positive"), reason, el("button", { id: "fp-btn", type: "submit", class: "danger" }, "Mark false positive")))),
    el("details", { class: "panel" }, el("summary", {}, "STIX JSON"), el("pre", { id: "object-json" }, JSON.stringify(o, null, 2))));
};

// ---- relationship graph ----
const typeColours = {
  "intrusion-set": "#b3261e", "threat-actor": "#8e24aa", campaign: "#d81b60", malware: "#e65100", tool: "#6d4c41",
  "attack-pattern": "#1565c0", indicator: "#2e7d32", sighting: "#f9a825", report: "#455a64", grouping: "#546e7a",
  vulnerability: "#ad1457", identity: "#00838f", "course-of-action": "#558b2f", infrastructure: "#4527a0", location: "#0277bd",
};
const colourOf = (t) => typeColours[t] || "#757575";

// radialLayout places the graph around root: each node on the ring of
// its distance from root, near the angle of the node it was reached
// from; a ring with more nodes than fit is split into concentric rings
// a node apart, so that 1,000 neighbours stay distinct.
function radialLayout(nodes, edges, root) {
  const adj = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) {
    if (adj.has(e.source) && adj.has(e.target)) { adj.get(e.source).push(e.target); adj.get(e.target).push(e.source); }
  }
  const depth = new Map([[root, 0]]), parent = new Map();
  const queue = [root];
  for (let i = 0; i < queue.length; i++) {
    for (const m of adj.get(queue[i]) || []) if (!depth.has(m)) { depth.set(m, depth.get(queue[i]) + 1); parent.set(m, queue[i]); queue.push(m); }
  }
  const maxD = Math.max(0, ...depth.values());
  for (const n of nodes) if (!depth.has(n.id)) depth.set(n.id, maxD + 1);
  const levels = [];
  for (const n of nodes) (levels[depth.get(n.id)] ||= []).push(n);
  const pos = new Map([[root, { x: 0, y: 0, a: 0 }]]);
  const spacing = 13;
  let r = 0;
  for (let d = 1; d < levels.length; d++) {
    const lv = levels[d] || [];
    if (!lv.length) continue;
    if (d === 1) lv.sort((a, b) => (a.type + a.title).localeCompare(b.type + b.title));
    else lv.sort((a, b) => ((pos.get(parent.get(a.id)) || { a: 7 }).a - (pos.get(parent.get(b.id)) || { a: 7 }).a) || a.type.localeCompare(b.type));
    r += 110;
    const rings = Math.max(1, Math.ceil((lv.length * spacing) / (2 * Math.PI * r)));
    lv.forEach((n, i) => {
      const a = (2 * Math.PI * i) / lv.length;
      const rr = r + (i % rings) * spacing;
      pos.set(n.id, { x: rr * Math.cos(a), y: rr * Math.sin(a), a });
    });
    r += (rings - 1) * spacing;
  }
  return { pos, depth, radius: r + 30 };
}

pages.graph = async (id) => {
  const started = performance.now();
  const first = await v1("objects/" + enc(id) + "/graph?depth=2&limit=1000");
  const nodes = new Map(), edges = new Map(), expanded = new Set([id]);
  const merge = (g) => {
    for (const n of g.nodes || []) if (!nodes.has(n.id)) nodes.set(n.id, { id: n.id, type: n.type || n.id.split("--")[0], title: n.title || n.id, tlp: n.tlp });
    for (const e of g.edges || []) { const k = e.source + " " + e.type + " " + e.target; if (!edges.has(k)) edges.set(k, e); }
  };
  merge(first);
  if (!nodes.has(id)) nodes.set(id, { id, type: id.split("--")[0], title: id });
  const canvas = el("canvas", { id: "graph-canvas", role: "img", "aria-label": "relationship graph; the list of its objects follows" });
  const tip = el("div", { id: "graph-tip", class: "graph-tip", hidden: true });
  const side = el("div", { id: "graph-selected", class: "panel graph-side" }, muted("Click an object to expand it and see it here."));
  const status = el("p", { id: "graph-status", class: "muted", role: "status" });
  const list = el("ul", { id: "graph-list", class: "graph-list" });
  const legend = el("div", { class: "legend", id: "graph-legend" });
  const root = nodes.get(id);
  show(el("div", { class: "toolbar" }, el("h1", { class: "wrap" }, "Graph of ", objLink(id, root.title)), status),
    el("div", { class: "graph-wrap" }, el("div", { class: "panel graph-panel" }, canvas, tip, legend), side),
    el("details", { class: "panel" }, el("summary", {}, "Objects in the graph"), list));
  let lay, view2 = { k: 1, dx: 0, dy: 0 }, selected = null, hover = null;
  const ctx = canvas.getContext("2d");
  const size = () => {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 800, h = canvas.clientHeight || 600;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    return { w, h, dpr };
  };
  const toScreen = (p, s) => {
    const k = (Math.min(s.w, s.h) / (2 * lay.radius)) * view2.k;
    return [s.w / 2 + view2.dx + p.x * k, s.h / 2 + view2.dy + p.y * k];
  };
  let sz;
  const draw = () => {
    const t0 = performance.now();
    sz = size();
    ctx.setTransform(sz.dpr, 0, 0, sz.dpr, 0, 0);
    ctx.clearRect(0, 0, sz.w, sz.h);
    ctx.lineWidth = 0.6;
    ctx.strokeStyle = "rgba(90,100,120,0.35)";
    ctx.beginPath();
    for (const e of edges.values()) {
      const a = lay.pos.get(e.source), b = lay.pos.get(e.target);
      if (!a || !b) continue;
      const [x1, y1] = toScreen(a, sz), [x2, y2] = toScreen(b, sz);
      ctx.moveTo(x1, y1); ctx.lineTo(x2, y2);
    }
    ctx.stroke();
    const many = nodes.size > 150;
    for (const n of nodes.values()) {
      const [x, y] = toScreen(lay.pos.get(n.id), sz);
      const rad = n.id === id ? 9 : expanded.has(n.id) ? 6 : many ? 3.5 : 5;
      ctx.beginPath(); ctx.arc(x, y, rad, 0, 2 * Math.PI);
      ctx.fillStyle = colourOf(n.type); ctx.fill();
      if (n.id === selected || n.id === id) { ctx.lineWidth = 2; ctx.strokeStyle = "#1d2330"; ctx.stroke(); }
    }
    ctx.font = "12px system-ui, sans-serif"; ctx.fillStyle = "#1d2330";
    for (const n of nodes.values()) {
      if (!(n.id === id || n.id === selected || n.id === hover || expanded.has(n.id) || (!many && lay.depth.get(n.id) <= 1))) continue;
      const [x, y] = toScreen(lay.pos.get(n.id), sz);
      ctx.fillText(clip(n.title, 40), x + 8, y - 6);
    }
    const ms = performance.now() - t0;
    canvas.dataset.drawMs = ms.toFixed(1);
    return ms;
  };
  const relayout = () => {
    lay = radialLayout([...nodes.values()], [...edges.values()], id);
    const ms = draw();
    canvas.dataset.nodes = String(nodes.size);
    canvas.dataset.radius = String(lay.radius);
    canvas.dataset.edges = String(edges.size);
    status.textContent = nodes.size + " objects, " + edges.size + " relationships" + (first.truncated ? " (cut at the limit)" : "");
    const types = [...new Set([...nodes.values()].map((n) => n.type))].sort();
    legend.replaceChildren(...types.map((t) => el("span", {}, el("i", { style: null, "data-colour": t }), t)));
    for (const i of legend.querySelectorAll("i")) i.style.background = colourOf(i.dataset.colour);
    list.replaceChildren(...[...nodes.values()].sort((a, b) => (a.type + a.title).localeCompare(b.type + b.title)).slice(0, 2000)
      .map((n) => el("li", {}, objLink(n.id, n.title), " ", el("span", { class: "muted" }, n.type))));
    return ms;
  };
  const layoutStart = performance.now();
  relayout();
  // Time from the request to the drawn graph, for the browser benchmark.
  canvas.dataset.totalMs = (performance.now() - started).toFixed(1);
  canvas.dataset.layoutMs = (performance.now() - layoutStart).toFixed(1);
  const hit = (ev) => {
    const b = canvas.getBoundingClientRect(), mx = ev.clientX - b.left, my = ev.clientY - b.top;
    let best = null, bd = 100;
    for (const n of nodes.values()) {
      const [x, y] = toScreen(lay.pos.get(n.id), sz);
      const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d < bd) { bd = d; best = n; }
    }
    return best;
  };
  canvas.addEventListener("mousemove", (ev) => {
    if (drag) { view2.dx += ev.movementX; view2.dy += ev.movementY; moved = true; draw(); return; }
    const n = hit(ev);
    if ((n && n.id) !== hover) { hover = n && n.id; draw(); }
    tip.hidden = !n;
    if (n) { tip.textContent = n.title + " (" + n.type + ")"; tip.style.left = (ev.offsetX + 12) + "px"; tip.style.top = (ev.offsetY + 12) + "px"; }
  });
  let drag = false, moved = false;
  canvas.addEventListener("mousedown", () => { drag = true; moved = false; });
  window.addEventListener("mouseup", () => { drag = false; }, { once: false });
  canvas.addEventListener("wheel", (ev) => { ev.preventDefault(); view2.k = Math.min(20, Math.max(0.3, view2.k * (ev.deltaY < 0 ? 1.2 : 1 / 1.2))); draw(); }, { passive: false });
  canvas.addEventListener("click", async (ev) => {
    if (moved) return;
    const n = hit(ev);
    if (!n) return;
    selected = n.id;
    side.replaceChildren(el("h2", { class: "wrap" }, n.title), el("p", {}, el("span", { class: "tier" }, n.type), " ", tlpBadge(n.tlp)),
      el("p", {}, objLink(n.id, "Open the object")), el("p", {}, el("a", { href: "#/graph/" + enc(n.id) }, "Centre the graph here")));
    draw();
    if (expanded.has(n.id)) return;
    expanded.add(n.id);
    try { merge(await v1("objects/" + enc(n.id) + "/graph?depth=1&limit=200")); relayout(); }
    catch (e) { side.append(el("p", { class: "error" }, e.message)); }
  });
  window.addEventListener("resize", () => { if (state.page === "graph") draw(); });
};

// ---- ATT&CK matrix ----
function heat(t) {
  if (t.alerts > 0) return "h-alert";
  if (t.sightings > 0) return "h-sight";
  if (t.indicators > 0) return "h-ind";
  return "h-0";
}
pages.matrix = async (arg, params) => {
  const started = performance.now();
  const filter = params.get("filter") || "", fname = params.get("name") || "";
  const m = await v1("attack/matrix" + (filter ? "?filter=" + enc(filter) : ""));
  const tactics = m.tactics || [];
  const picks = el("div", { id: "matrix-picks", class: "picks" });
  const fq = el("input", { id: "matrix-filter-input", type: "search", "aria-label": "intrusion set or malware", placeholder: "an intrusion set or malware, e.g. APT28" });
  const pick = async (e) => {
    e.preventDefault();
    const q = fq.value.trim();
    if (!q) return;
    picks.replaceChildren(muted("searching…"));
    try {
      const [a, b] = await Promise.all([v1(searchQuery(q, "intrusion-set", "", "", 8)), v1(searchQuery(q, "malware", "", "", 8))]);
      const res = [...(a.results || []), ...(b.results || [])];
      picks.replaceChildren(...(res.length ? res.map((r) => el("a", { class: "pick", href: "#/matrix?filter=" + enc(r.id) + "&name=" + enc(r.title || r.id) }, r.title || r.id, " ", el("span", { class: "muted" }, r.type))) : [muted("nothing found")]));
    } catch (err) { picks.replaceChildren(el("p", { class: "error" }, err.message)); }
  };
  let total = 0, inFilter = 0;
  const grid = el("div", { class: "matrix", id: "matrix" }, tactics.map((t) => el("div", { class: "tactic" },
    el("h2", { title: t.name }, t.name, el("span", { class: "muted" }, " ", (t.techniques || []).length)),
    (t.techniques || []).map((q) => {
      total++;
      if (q.in_filter) inFilter++;
      const counts = (q.indicators || 0) + " indicators, " + (q.sightings || 0) + " sightings, " + (q.alerts || 0) + " alerts";
      return el("a", { class: "tech " + heat(q) + (filter ? (q.in_filter ? " in" : " out") : ""), href: "#/object/" + enc(q.id), title: q.external_id + " " + q.name + ": " + counts, "data-ext": q.external_id },
        el("span", { class: "ext" }, q.external_id), " ", q.name);
    }))));
  show(el("div", { class: "toolbar" }, el("h1", {}, "ATT&CK matrix"),
    filter ? el("span", { id: "matrix-filter" }, "techniques of ", objLink(filter, fname || filter), " (", inFilter, ") · ", el("a", { href: "#/matrix" }, "all")) : null),
  el("form", { class: "toolbar", onsubmit: pick }, el("label", { for: "matrix-filter-input" }, "Filter by"), fq, el("button", { type: "submit" }, "Find")), picks,
  el("div", { class: "legend" }, el("span", {}, el("i", { class: "h-alert" }), "alerts"), el("span", {}, el("i", { class: "h-sight" }), "sightings"),
    el("span", {}, el("i", { class: "h-ind" }), "indicators"), el("span", {}, el("i", { class: "h-0" }), "nothing behind it"), el("span", { class: "muted" }, total + " techniques in " + tactics.length + " tactics")),
  el("div", { class: "panel matrix-panel" }, tactics.length ? grid : muted("No ATT&CK data on this node: ingest the ATT&CK bundle (entente ingest enterprise-attack.json.gz).")));
  view().dataset.renderMs = (performance.now() - started).toFixed(1);
};

// ---- indicator form ----
// caretLine puts a caret under column col (0-based, in runes) of line.
function caretLine(line, col) {
  const chars = [...line];
  return chars.slice(0, col).map((c) => (c === "\t" ? "\t" : " ")).join("") + "^";
}
pages.indicator = async (arg) => {
  const editing = arg && arg !== "new";
  let o = {};
  let d = {};
  if (editing) { d = await v1("objects/" + enc(arg)); o = d.object || {}; }
  const cs = (await collections()).filter((c) => state.role === "admin" || (c.write_roles || []).includes(state.role));
  const name = el("input", { id: "ind-name", type: "text", value: o.name || "", required: true });
  const desc = el("textarea", { id: "ind-description", rows: "3" }, o.description || "");
  const pattern = el("input", { id: "ind-pattern", type: "text", class: "mono", value: o.pattern || "", spellcheck: "false", autocomplete: "off", required: true, "aria-describedby": "pattern-status" });
  const labels = el("input", { id: "ind-labels", type: "text", value: (o.labels || []).join(", "), placeholder: "comma-separated" });
  const tlp = tlpSelect("ind-tlp", (tlpLabel(d.tlp) || "TLP:AMBER").slice(4).toLowerCase(), "");
  const coll = el("select", { id: "ind-collection" }, cs.map((c) => el("option", { value: c.alias || c.id, selected: (c.alias || c.id) === "intel" }, c.alias || c.title || c.id)));
  const status = el("p", { id: "pattern-status", role: "status", class: "muted" }, "");
  const caret = el("pre", { id: "pattern-caret", class: "caret", hidden: true, "aria-hidden": "true" });
  const err = el("p", { id: "ind-error", class: "error", role: "alert" });
  let timer = 0, seq = 0;
  const showPatternError = (msg, col, line) => {
    status.className = "error"; status.textContent = msg;
    if (col === null || col === undefined || !Number.isFinite(col)) { caret.hidden = true; return; }
    const lines = pattern.value.split("\n");
    const ln = lines[Math.max(0, Math.min(lines.length - 1, (line || 1) - 1))];
    caret.textContent = ln + "\n" + caretLine(ln, col);
    caret.dataset.column = String(col);
    caret.hidden = false;
  };
  const check = async () => {
    const my = ++seq, p = pattern.value;
    if (!p.trim()) { status.textContent = ""; caret.hidden = true; return; }
    try {
      const r = await v1("patterns/validate", { method: "POST", body: { pattern: p } });
      if (my !== seq) return;
      if (r.ok) { status.className = "ok"; status.textContent = "✓ a valid STIX pattern"; caret.hidden = true; pattern.removeAttribute("aria-invalid"); }
      else { pattern.setAttribute("aria-invalid", "true"); showPatternError(r.error, r.column === undefined ? null : Number(r.column), r.line); }
    } catch (e) { if (my === seq) { status.className = "error"; status.textContent = e.message; } }
  };
  pattern.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 250); });
  const save = async (e) => {
    e.preventDefault();
    err.textContent = "";
    const body = { name: name.value.trim(), description: desc.value.trim(), pattern: pattern.value,
      labels: labels.value.split(",").map((s) => s.trim()).filter(Boolean), tlp: tlp.value, collection: coll.value };
    if (editing) body.id = arg;
    const btn = document.getElementById("ind-save");
    btn.disabled = true;
    try {
      const r = await v1("indicators", { method: "POST", body });
      const nid = (r && (r.id || (r.object && r.object.id))) || arg;
      go("#/object/" + enc(nid) + "?done=" + enc(editing ? "indicator saved" : "indicator created"));
    } catch (ex) {
      btn.disabled = false;
      err.textContent = ex.message;
      if (ex.field === "pattern") showPatternError(ex.message, ex.column);
      const f = document.getElementById("ind-" + ex.field);
      if (f) { f.setAttribute("aria-invalid", "true"); f.focus(); }
    }
  };
  const row = (label, id, input, hint) => el("div", { class: "field" }, el("label", { for: id }, label), input, hint ? el("span", { class: "muted hint" }, hint) : null);
  show(el("h1", {}, editing ? "Edit indicator" : "New indicator"),
    el("form", { id: "indicator-form", class: "panel form", onsubmit: save },
      row("Name", "ind-name", name),
      row("Description", "ind-description", desc),
      el("div", { class: "field" }, el("label", { for: "ind-pattern" }, "Pattern"), pattern, caret, status,
        el("span", { class: "muted hint" }, "STIX patterning, e.g. [ipv4-addr:value = '198.51.100.7'] — checked by the node's own parser as you type")),
      row("Labels", "ind-labels", labels),
      row("TLP", "ind-tlp", tlp),
      row("Collection", "ind-collection", coll),
      el("p", {}, el("button", { id: "ind-save", type: "submit", class: "primary" }, editing ? "Save" : "Create indicator"), " ", err)));
  if (pattern.value) check();
};

// ---- report or grouping ----
pages.report = async (arg, params) => {
  const refs = new Map();
  for (const r of (params.get("refs") || "").split(",").filter(Boolean)) refs.set(r, r);
  const type = el("select", { id: "rep-type" }, ["report", "grouping", "incident"].map((t) => el("option", { value: t }, t)));
  const name = el("input", { id: "rep-name", type: "text", required: true });
  const desc = el("textarea", { id: "rep-description", rows: "3" });
  const chosen = el("ul", { id: "rep-refs" });
  const q = el("input", { id: "rep-search", type: "search", "aria-label": "find objects to add", placeholder: "find objects to add" });
  const found = el("div", { id: "rep-found", class: "picks" });
  const err = el("p", { id: "rep-error", class: "error", role: "alert" });
  const redraw = () => chosen.replaceChildren(...(refs.size ? [...refs].map(([id, title]) => el("li", {}, objLink(id, title), " ",
    el("button", { type: "button", class: "small", "aria-label": "remove " + title, onclick: () => { refs.delete(id); redraw(); } }, "×"))) : [el("li", { class: "muted" }, "no objects yet")]));
  const find = async (e) => {
    e.preventDefault();
    if (!q.value.trim()) return;
    try {
      const r = await v1(searchQuery(q.value.trim(), "", "", "", 10));
      found.replaceChildren(...(r.results || []).map((x) => el("button", { type: "button", class: "pick", onclick: () => { refs.set(x.id, x.title || x.id); redraw(); } }, "+ ", x.title || x.id, " ", el("span", { class: "muted" }, x.type))));
    } catch (ex) { found.replaceChildren(el("p", { class: "error" }, ex.message)); }
  };
  const save = async (e) => {
    e.preventDefault();
    try {
      const r = await v1("reports", { method: "POST", body: { type: type.value, name: name.value.trim(), description: desc.value.trim(), object_refs: [...refs.keys()] } });
      const nid = r && (r.id || (r.object && r.object.id));
      location.hash = nid ? "#/object/" + enc(nid) + "?done=" + enc(type.value + " created") : "#/browse/" + type.value;
    } catch (ex) { err.textContent = ex.message; }
  };
  redraw();
  show(el("h1", {}, "New report or grouping"),
    el("form", { class: "panel form", id: "report-form", onsubmit: save },
      el("div", { class: "field" }, el("label", { for: "rep-type" }, "Type"), type),
      el("div", { class: "field" }, el("label", { for: "rep-name" }, "Name"), name),
      el("div", { class: "field" }, el("label", { for: "rep-description" }, "Description"), desc),
      el("h2", {}, "Objects"), chosen,
      el("p", {}, el("button", { id: "rep-save", type: "submit", class: "primary" }, "Create"), " ", err)),
    el("form", { class: "panel toolbar", onsubmit: find }, q, el("button", { type: "submit" }, "Find")), found);
};

// searchLegacy is the search of ids and values a node without the
// search API answers (/ui/api/search).
async function searchLegacy(form, q) {
  let res;
  try { res = (await api("search?q=" + encodeURIComponent(q))).results; }
  catch (e) { show(form, el("p", { class: "error", role: "alert" }, e.message)); return; }
  show(form, el("div", { class: "panel" }, res.length === 0 ? el("p", { id: "search-none" }, "Nothing found.") :
    el("table", { id: "search-results" },
      el("thead", {}, el("tr", {}, el("th", {}, "Object"), el("th", {}, "Type"), el("th", {}, "Why"), el("th", { class: "hide-narrow" }, "Collection"))),
      el("tbody", {}, (res || []).map((r) => el("tr", {},
        el("td", { class: "wrap" }, el("a", { href: "#/object/" + encodeURIComponent(r.id) }, r.name || r.id)),
        el("td", {}, r.type), el("td", {}, r.why), el("td", { class: "hide-narrow", title: r.collection }, r.collection_title || r.collection)))))));
}

// objectLegacy is the object page of a node without the object API.
async function objectLegacy(id) {
  const d = await api("objects/" + encodeURIComponent(id));
  const refs = [];
  const walk = (v, k) => {
    if (typeof v === "string" && /_refs?$/.test(k || "") && /^[a-z0-9-]+--/.test(v)) refs.push([k, v]);
    else if (Array.isArray(v)) v.forEach((x) => walk(x, k));
    else if (v && typeof v === "object") for (const [kk, vv] of Object.entries(v)) walk(vv, kk);
  };
  walk(d.object, "");
  show(
    el("h1", { class: "wrap", id: "object-id" }, d.id),
    el("p", {}, el("span", { class: "tier" }, d.type)),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h2", {}, "Markings"), d.markings.length ? el("ul", {}, d.markings.map((m) => el("li", { class: "wrap" }, objLink(m)))) : el("p", { class: "muted" }, "none"),
        el("h2", {}, "References"), refs.length ? el("table", {}, el("tbody", {}, refs.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "wrap" }, objLink(v)))))) : el("p", { class: "muted" }, "none")),
      el("div", { class: "panel" }, el("h2", {}, "Versions and sources"), el("table", { id: "versions" },
        el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", {}, "Collection"), el("th", {}, "Source"))),
        el("tbody", {}, d.versions.map((v) => el("tr", {}, el("td", {}, fmt(v.version)), el("td", { title: v.collection }, v.collection_title || v.collection),
          el("td", { class: "wrap" }, v.origin ? objLink(v.origin) : "this node", v.peer ? " via peer " + v.peer : ""))))))),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h2", {}, "Relationships"), edgeTable(d.relationships)),
      el("div", { class: "panel" }, el("h2", {}, "Sightings"), d.sightings.length ? el("ul", {}, (d.sightings || []).map((s) => el("li", { class: "wrap" }, objLink(s.ref)))) : el("p", { class: "muted" }, "none"))),
    el("div", { class: "panel" }, el("h2", {}, "Latest version"), el("pre", { id: "object-json" }, JSON.stringify(d.object, null, 2))));
}

pages.partners = async () => {
  const out = [el("h1", {}, "Partners and agreements")];
  try {
    const [{ partners }] = await Promise.all([api("partners"), collections()]);
    out.push(el("div", { class: "panel" }, el("table", { id: "partners" },
      el("thead", {}, el("tr", {}, el("th", {}, "Partner"), el("th", {}, "Country"), el("th", {}, "Agreement"), el("th", {}, ""))),
      el("tbody", {}, (partners || []).map((r) => el("tr", {},
        el("td", {}, r.partner.name || r.partner.id), el("td", {}, r.partner.country),
        el("td", {}, r.agreement ? agreementSummary(r.agreement) : el("span", { class: "muted" }, "no agreement: receives nothing")),
        el("td", {}, el("button", { type: "button", onclick: (e) => preview(r.partner.id, e.target) }, "Preview"),
          state.role === "admin" ? [" ", el("a", { href: "#/agreement/" + enc(r.partner.id), class: "edit-agreement", "data-partner": r.partner.id }, r.agreement ? "Edit agreement" : "Add agreement")] : null)))))));
  } catch (e) { out.push(el("p", { class: "error" }, e.message)); }
  out.push(el("div", { id: "preview" }));
  out.push(...await blindPanel());
  // Peers are an admin's (the node refuses them to analysts): not shown.
  if (state.role === "admin") try {
    const { peers } = await api("peers");
    out.push(el("h2", {}, "Peers"), el("div", { class: "panel" }, el("table", { id: "peers" },
      el("thead", {}, el("tr", {}, el("th", {}, "Peer"), el("th", {}, "Direction"), el("th", {}, "Last sync"), el("th", {}, "Status"))),
      el("tbody", {}, (peers || []).map((p) => el("tr", {}, el("td", { class: "wrap" }, p.name || p.id, el("br"), el("span", { class: "muted" }, p.discovery_url || p.api_root || "")),
        el("td", {}, p.direction), el("td", {}, fmt(p.last_sync)), el("td", { class: p.last_error ? "error" : "" }, p.last_error || (p.last_sync ? "ok" : "never synced"))))))));
  } catch (e) { out.push(el("p", { class: "error" }, e.message)); }
  show(...out);
};
// blindPanel lists the partners with blind access and their budget use.
async function blindPanel() {
  try {
    const { blind } = await api("partners/blind");
    if (!blind || !blind.length) return [];
    return [el("h2", {}, "Blind access"), el("div", { class: "panel" }, el("table", { id: "blind-partners" },
      el("thead", {}, el("tr", {}, el("th", {}, "Partner"), el("th", {}, "Collections"), el("th", {}, "Budget used"), el("th", {}, "Period ends"), el("th", {}, "Set"))),
      el("tbody", {}, blind.map((b) => {
        const [limit] = (b.budget || "").split("/");
        const pct = Number(limit) > 0 ? Math.min(100, Math.round(100 * (Number(b.used) || 0) / Number(limit))) : 0;
        return el("tr", {}, el("td", { class: "wrap" }, b.name || b.partner),
          el("td", {}, (b.collections || []).map(collectionName).join(", ")),
          el("td", {}, el("meter", { min: "0", max: "100", value: String(pct), title: pct + "%" }), " " + (b.used || 0) + " of " + (b.budget || "no budget")),
          el("td", {}, fmt(b.reset)),
          el("td", {}, b.set ? b.set.indicators + " indicators, " + Math.ceil(b.set.bytes / 1024) + " KiB, epoch " + b.set.epoch : el("span", { class: "muted" }, "not built yet")));
      })))), el("p", { class: "muted" }, "Blind partners test values from their own logs against these collections: no value is released, only membership, within the budget.")];
  } catch (e) { return [el("p", { class: "error" }, e.message)]; }
}
function agreementSummary(a) {
  const redact = Object.entries(a.redact || {}).filter(([, v]) => v && (v === true || v.length)).map(([k]) => k.replace(/_/g, " "));
  const when = (a.valid_from || a.valid_until) ? "in force " + (a.valid_from ? "from " + fmt(a.valid_from) + " " : "") + (a.valid_until ? "until " + fmt(a.valid_until) : "") : "in force";
  return el("ul", { class: "agreement" },
    el("li", {}, "up to ", el("b", {}, a.max_tlp)),
    el("li", {}, "collections: " + ((a.collections || []).map(collectionName).join(", ") || "none")),
    el("li", {}, "types: " + ((a.object_types || []).join(", ") || "all")),
    el("li", {}, a.allow_reshare ? "may receive what third parties shared (CLEAR, GREEN)" : "only this node's own objects"),
    el("li", {}, "redaction: " + (redact.join(", ") || "none")),
    el("li", {}, when));
}
async function preview(id, btn) {
  const box = document.getElementById("preview");
  btn.disabled = true;
  try {
    const { preview } = await api("partners/" + encodeURIComponent(id) + "/preview");
    box.replaceChildren(el("div", { class: "panel" }, el("h2", {}, "What " + id + " would receive, and why"), el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Object"), el("th", {}, "Decision"), el("th", {}, "Why"))),
      el("tbody", {}, (preview || []).map((x) => el("tr", {}, el("td", { class: "wrap" }, objLink(x.object.id)),
        el("td", {}, x.decision.allow ? "shared" : "withheld"), el("td", {}, x.decision.reason || x.decision.rule || "")))))));
  } catch (e) { box.replaceChildren(el("p", { class: "error" }, e.message)); }
  btn.disabled = false;
}

pages.audit = async (arg, params) => {
  const out = [el("h1", {}, "Audit")];
  try {
    const next = params.get("next") || "";
    const page = await api("audit" + (next ? "?next=" + encodeURIComponent(next) : ""));
    out.push(el("div", { class: "panel" }, el("table", { id: "audit" },
      el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "Action"), el("th", {}, "Rule"), el("th", {}, "Actor"), el("th", { class: "hide-narrow" }, "Detail"))),
      el("tbody", {}, (page.records || []).map((a) => el("tr", {}, el("td", {}, fmt(a.time)), el("td", {}, a.action), el("td", {}, a.rule || ""),
        el("td", {}, a.actor || ""), el("td", { class: "hide-narrow wrap" }, a.detail || a.object_id || ""))))),
      page.next ? el("p", {}, el("a", { id: "audit-next", href: "#/audit?next=" + encodeURIComponent(page.next) }, "Next page")) : null));
  } catch (e) { out.push(el("p", { class: "error" }, e.message)); }
  out.push(el("h2", {}, "Feeds"));
  try {
    const { feeds } = await api("feeds");
    out.push(el("div", { class: "panel" }, el("table", { id: "feeds" },
      el("thead", {}, el("tr", {}, el("th", {}, "Feed"), el("th", {}, "Format"), el("th", {}, "Last run"), el("th", {}, "Status"), el("th", {}, ""))),
      el("tbody", {}, (feeds || []).map((f) => el("tr", {}, el("td", { class: "wrap" }, f.name, el("br"), el("span", { class: "muted" }, f.url)),
        el("td", {}, f.format), el("td", {}, fmt(f.last_run)), el("td", { class: f.last_error ? "error" : "" }, f.last_error || (f.last_run ? "ok" : "not polled yet")),
        el("td", {}, el("a", { href: "#/feed/" + enc(f.id), class: "edit-feed", "data-feed": f.id }, "Edit"))))))));
  } catch (e) { out.push(el("p", { class: "error" }, e.message)); }
  show(...out);
};

// devices lists the devices of the node's device watch, each with a
// small map of the countries it talks to, its top destinations and its
// findings (the local view: the device's own address or MAC).
pages.devices = async (arg, params) => {
  const cls = params.get("class") || "";
  let list, total;
  try {
    const r = await api("devices" + (cls ? "?class=" + encodeURIComponent(cls) : ""));
    list = r.devices || []; total = r.total || list.length;
  } catch (e) { show(el("h1", {}, "Devices"), el("p", { class: "muted", id: "devices-none" }, e.message)); return; }
  const w = await world();
  const shown = list;
  const card = (d) => {
    const conns = new Map((d.countries || []).map((c) => [c.Country, c.Connections]));
    const maxC = Math.max(1, ...conns.values());
    const breached = new Set((d.findings || []).filter((f) => f.kind === "class-policy").map((f) => f.country));
    const map = drawMap(w, (cc) => breached.has(cc) ? "alerted" : conns.has(cc) ? "s" + Math.min(3, 1 + Math.floor((3 * conns.get(cc)) / (maxC + 1))) : "",
      "Countries " + d.device + " talks to");
    map.removeAttribute("id");
    map.setAttribute("style", "max-width: 22rem");
    const title = el("h2", { class: "wrap" }, d.device, " ", el("span", { class: "muted" }, d.pseudonym),
      d.hostname ? " “" + d.hostname + "”" : "", " ", el("span", { class: "tier" }, d.class || "no class"));
    const countries = (d.countries || []).map((c) => (c.Country || "??") + " " + c.Connections).join(", ");
    const dests = el("table", { class: "device-destinations" },
      el("thead", {}, el("tr", {}, el("th", {}, "Destination"), el("th", {}, "Country"), el("th", {}, "Port"), el("th", {}, "Connections"), el("th", {}, "Beacon"))),
      el("tbody", {}, (d.destinations || []).map((x) => el("tr", {},
        el("td", { class: "wrap" }, x.address + (x.name ? " " + x.name : "")), el("td", {}, x.country || "??"),
        el("td", {}, x.port + "/" + x.protocol), el("td", {}, x.connections), el("td", {}, x.beacon_score ? x.beacon_score.toFixed(2) : "")))));
    const findings = (d.findings || []).length === 0 ? el("p", { class: "muted" }, "no findings") :
      el("table", { class: "device-findings" }, el("tbody", {}, d.findings.map((f) => el("tr", { "data-kind": f.kind },
        el("td", {}, fmt(f.time)), el("td", {}, el("b", {}, f.kind)), el("td", { class: "wrap" }, f.evidence)))));
    return el("div", { class: "panel device", "data-device": d.device, "data-pseudonym": d.pseudonym },
      title, el("div", { class: "row" }, map, el("div", {}, el("p", {}, d.connections + " connections out: " + countries), dests)), findings);
  };
  show(el("div", { class: "toolbar" }, el("h1", {}, "Devices"), el("span", { class: "muted", id: "devices-count" },
    total > shown.length ? "the first " + shown.length + " of " + total + " devices" : total + (total === 1 ? " device" : " devices"))),
  ...shown.map(card));
};

// ---- editors (admin) ----
// An agreement or a feed is edited, previewed (what the change would
// release or change, from the node API, nothing saved) and then saved:
// Save is enabled only for the form as it was previewed.

// field is a labelled form control.
function field(id, label, control, hint) {
  return el("div", { class: "field" }, el("label", { for: id }, label), control, hint ? el("span", { class: "muted small" }, hint) : null);
}
// checks is a group of labelled checkboxes, one per [value, label].
function checks(name, legend, items, checked) {
  return el("fieldset", { class: "checks", id: name }, el("legend", {}, legend), items.map(([v, l], i) =>
    el("label", { for: name + "-" + i }, el("input", { type: "checkbox", id: name + "-" + i, value: v, checked: checked.includes(v) }), " ", l)));
}
const checked = (id) => [...document.querySelectorAll("#" + id + " input:checked")].map((i) => i.value);
// localTime and isoTime convert between RFC 3339 and a datetime-local
// control's value (UTC both).
function localTime(t) {
  if (!t) return "";
  const d = new Date(t);
  return Number.isFinite(d.getTime()) ? d.toISOString().slice(0, 16) : "";
}
function isoTime(v) { return v ? new Date(v + "Z").toISOString() : undefined; }
// editorButtons wires a form's Preview and Save: preview(body) draws
// what would change, save(body) saves; Save waits for a preview of the
// form as it is.
function editorButtons(form, body, previewFn, saveFn, msg) {
  let previewed = null;
  const save = el("button", { type: "button", id: "edit-save", class: "primary", disabled: true }, "Save");
  const pv = el("button", { type: "button", id: "edit-preview" }, "Preview");
  const stale = () => { previewed = null; save.disabled = true; };
  form.addEventListener("input", stale);
  form.addEventListener("change", stale);
  pv.addEventListener("click", async () => {
    pv.disabled = true; msg.className = "muted"; msg.textContent = "previewing…";
    try {
      const b = body();
      await previewFn(b);
      previewed = JSON.stringify(b); save.disabled = false; msg.textContent = "previewed: nothing is saved until you save";
    } catch (e) { msg.className = "error"; msg.textContent = e.message; }
    pv.disabled = false;
  });
  save.addEventListener("click", async () => {
    const b = body();
    if (JSON.stringify(b) !== previewed) { stale(); msg.className = "error"; msg.textContent = "the form changed since the preview: preview it again"; return; }
    save.disabled = true;
    try { await saveFn(b); } catch (e) { msg.className = "error"; msg.textContent = e.message; save.disabled = false; }
  });
  return el("p", { class: "toolbar" }, pv, save);
}
const summaryCells = (s) => s ? [el("td", {}, s.released), el("td", {}, s.withheld)] : [el("td", {}, "–"), el("td", {}, "–")];

pages.agreement = async (partner, params) => {
  const [colls, partnersR] = await Promise.all([collections(), api("partners")]);
  const row = (partnersR.partners || []).find((r) => r.partner.id === partner);
  if (!row) { show(el("h1", {}, "Agreement"), el("p", { class: "error", role: "alert" }, "No partner " + partner + " on this node.")); return; }
  let a = null;
  try { a = await v1("agreements/" + enc(partner)); } catch (e) { if (e.status !== 404) throw e; }
  a = a || { partner: { id: partner }, collections: [], max_tlp: "green", redact: {} };
  const name = row.partner.name || partner;
  const tlpOf = (t) => String(t || "").toLowerCase().replace(/^tlp:/, "").replace("_", "+");
  const collItems = colls.map((c) => [c.id, c.alias || c.title || c.id]);
  const maxTLP = el("select", { id: "ag-tlp" }, ["clear", "green", "amber", "amber+strict"].map((t) => el("option", { value: t, selected: t === tlpOf(a.max_tlp) }, tlpLabel(t))));
  const types = el("input", { id: "ag-types", type: "text", value: (a.object_types || []).join(", "), placeholder: "every type" });
  const reshare = el("input", { id: "ag-reshare", type: "checkbox", checked: !!a.allow_reshare });
  const from = el("input", { id: "ag-from", type: "datetime-local", value: localTime(a.valid_from) });
  const until = el("input", { id: "ag-until", type: "datetime-local", value: localTime(a.valid_until) });
  const redactions = [["sighting_victims_to_country", "sightings: victims replaced by their country"], ["remove_third_party_identities", "third parties' identities removed"], ["strip_free_text", "free text removed"]];
  const blindOn = el("input", { id: "ag-blind", type: "checkbox", checked: !!a.blind });
  const budget = el("input", { id: "ag-budget", type: "text", value: a.blind ? a.blind.budget : "100000/day", placeholder: "100000/day" });
  const body = () => {
    const b = { id: a.id, partner: { id: partner }, collections: checked("ag-collections"), max_tlp: maxTLP.value,
      object_types: types.value.split(",").map((t) => t.trim()).filter(Boolean), allow_reshare: reshare.checked,
      redact: Object.fromEntries(checked("ag-redact").map((k) => [k, true])), valid_from: isoTime(from.value), valid_until: isoTime(until.value) };
    if (blindOn.checked) b.blind = { collections: checked("ag-blind-collections"), budget: budget.value.trim() };
    return b;
  };
  const msg = el("p", { id: "edit-status", role: "status", class: "muted" }, params.get("done") || "");
  const out = el("div", { id: "agreement-preview" });
  const form = el("form", { id: "agreement-form", class: "panel editor", onsubmit: (e) => e.preventDefault() },
    checks("ag-collections", "Collections it covers", collItems, a.collections || []),
    field("ag-tlp", "Most restrictive TLP released", maxTLP, "RED is never released"),
    field("ag-types", "STIX types (comma-separated)", types, "empty: every type"),
    el("div", { class: "field" }, el("label", { for: "ag-reshare" }, reshare, " may receive what third parties shared (CLEAR and GREEN)")),
    checks("ag-redact", "Redaction", redactions, Object.entries(a.redact || {}).filter(([, v]) => v).map(([k]) => k)),
    el("div", { class: "row" }, field("ag-from", "In force from (UTC)", from), field("ag-until", "Until (UTC)", until)),
    el("fieldset", { class: "checks" }, el("legend", {}, "Blind access"),
      el("label", { for: "ag-blind" }, blindOn, " grants blind access: the partner tests its values, none is released"),
      checks("ag-blind-collections", "Collections it may test", collItems, a.blind ? a.blind.collections || [] : []),
      field("ag-budget", "Budget (evaluations per period)", budget)));
  const renderPreview = async (b) => {
    // One pass over the objects counts both: the agreement on record
    // (current) and the change.
    const next = await v1("agreements/" + enc(partner) + "/preview?summary=true", { method: "POST", body: b });
    const cur = { summary: next.current };
    const ch = next.changes || [];
    const n = next.summary ? next.summary.changed || 0 : ch.length;
    out.replaceChildren(el("div", { class: "panel" }, el("h2", {}, "What " + name + " would receive"),
      el("table", { id: "agreement-summary" }, el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "Released"), el("th", {}, "Withheld"))),
        el("tbody", {}, el("tr", {}, el("th", { scope: "row" }, "Now"), summaryCells(cur && cur.summary)),
          el("tr", {}, el("th", { scope: "row" }, "With the change"), summaryCells(next.summary)))),
      el("p", { id: "agreement-changed" }, n === 0 ? "The change releases and withholds the same objects." : n + (n === 1 ? " object changes" : " objects change") + (ch.length < n ? " (the first " + ch.length + " listed)" : "") + ":"),
      ch.length ? el("table", { id: "agreement-changes" }, el("thead", {}, el("tr", {}, el("th", {}, "Object"), el("th", {}, "Now"), el("th", {}, "With the change"), el("th", {}, "Why"))),
        el("tbody", {}, ch.map((c) => el("tr", {}, el("td", { class: "wrap" }, objLink(c.object.id, c.object.name || c.object.id)),
          el("td", {}, c.before.allow ? "released" : "withheld"), el("td", { class: c.after.allow ? "ins" : "del" }, c.after.allow ? "released" : "withheld"),
          el("td", {}, c.after.reason || c.after.rule || ""))))) : null));
  };
  const save = async (b) => {
    await v1("agreements/" + enc(partner), { method: "PUT", body: b });
    go("#/agreement/" + enc(partner) + "?done=" + enc("agreement saved"));
  };
  show(el("div", { class: "toolbar" }, el("h1", {}, "Agreement with " + name), el("a", { href: "#/partners" }, "Partners")),
    form, msg, editorButtons(form, body, renderPreview, save, msg), out);
};

pages.feed = async (id, params) => {
  const [colls, { feeds }] = await Promise.all([collections(), v1("feeds")]);
  const f = (feeds || []).find((x) => x.id === id);
  if (!f) { show(el("h1", {}, "Feed"), el("p", { class: "error", role: "alert" }, "No feed " + id + " on this node.")); return; }
  const dur = (ns) => { const h = (Number(ns) || 0) / 3.6e12; return h ? (Number.isInteger(h) ? h + "h" : Math.round(h * 60) + "m") : ""; };
  const input = (k, v, attrs) => el("input", Object.assign({ id: "feed-" + k, type: "text", value: v === undefined || v === null ? "" : v }, attrs || {}));
  const name = input("name", f.name), url = input("url", f.url, { type: "url" }), interval = input("interval", dur(f.interval), { placeholder: "1h" });
  const validFor = input("valid-for", dur(f.valid_for), { placeholder: "the defaults per observable type" });
  const conf = input("confidence", f.confidence || 0, { type: "number", min: "0", max: "100" });
  // Each select offers the feed's own value as it is recorded, so that
  // saving an unchanged field changes nothing.
  const formats = ["auto", "misp-event", "csv", "urlhaus", "threatfox", "feodo", "plain"];
  const format = el("select", { id: "feed-format" }, (formats.includes(f.format) || !f.format ? formats : formats.concat([f.format])).map((v) => el("option", { value: v, selected: v === f.format }, v)));
  const curTLP = String(f.tlp || ""), normTLP = curTLP.toLowerCase().replace(/^tlp:/, "").replace("_", "+").replace("white", "clear");
  const tlp = el("select", { id: "feed-tlp" }, el("option", { value: "" }, "none"), tlpChoices.map((t) => el("option", { value: t === normTLP ? curTLP : t, selected: t === normTLP }, tlpLabel(t))),
    curTLP && !tlpChoices.includes(normTLP) ? el("option", { value: curTLP, selected: true }, curTLP) : null);
  const isColl = (c) => c.id === f.collection || c.alias === f.collection;
  const coll = el("select", { id: "feed-collection" }, colls.map((c) => el("option", { value: isColl(c) ? f.collection : c.alias || c.id, selected: isColl(c) }, c.alias || c.title || c.id)),
    f.collection && !colls.some(isColl) ? el("option", { value: f.collection, selected: true }, f.collection) : null);
  const body = () => ({ name: name.value.trim(), url: url.value.trim(), format: format.value, interval: interval.value.trim(), tlp: tlp.value,
    confidence: Number(conf.value) || 0, valid_for: validFor.value.trim(), collection: coll.value });
  const msg = el("p", { id: "edit-status", role: "status", class: "muted" }, params.get("done") || "");
  const out = el("div", { id: "feed-preview" });
  const form = el("form", { id: "feed-form", class: "panel editor", onsubmit: (e) => e.preventDefault() },
    field("feed-name", "Name (the source of its indicators)", name), field("feed-url", "URL", url), field("feed-format", "Format", format),
    el("div", { class: "row" }, field("feed-interval", "Polled every", interval), field("feed-valid-for", "Indicators valid for", validFor)),
    el("div", { class: "row" }, field("feed-tlp", "TLP of what it does not mark", tlp), field("feed-confidence", "Confidence of what it does not rate", conf)),
    field("feed-collection", "Collection it fills", coll));
  const renderPreview = async (b) => {
    const r = await v1("feeds/" + enc(id) + "/preview", { method: "POST", body: b });
    const ch = r.changes || [];
    out.replaceChildren(el("div", { class: "panel" }, el("h2", {}, "What saving would change"),
      ch.length ? el("table", { id: "feed-changes", class: "diff" }, el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Was"), el("th", {}, "Becomes"))),
        el("tbody", {}, ch.map((c) => el("tr", {}, el("td", {}, c.field), el("td", { class: "del wrap" }, c.from || "(none)"), el("td", { class: "ins wrap" }, c.to || "(none)"))))) :
        el("p", { id: "feed-changes-none" }, "Nothing changes."),
      el("p", { class: "muted" }, "The next poll uses the new configuration; what the feed imported stays as it is.")));
  };
  const save = async (b) => {
    await v1("feeds/" + enc(id), { method: "PUT", body: b });
    go("#/feed/" + enc(id) + "?done=" + enc("feed saved"));
  };
  show(el("div", { class: "toolbar" }, el("h1", {}, "Feed " + f.name), el("a", { href: "#/audit" }, "Audit and feeds")),
    form, msg, editorButtons(form, body, renderPreview, save, msg), out);
};

// ---- routing ----
// roles says which roles see each page: the node refuses the rest to
// the key anyway (docs/dashboard.md has the table).
const roles = {
  overview: ["admin", "analyst"], alerts: ["admin", "analyst"], search: ["admin", "analyst"], browse: ["admin", "analyst"],
  object: ["admin", "analyst"], graph: ["admin", "analyst"], matrix: ["admin", "analyst"], indicator: ["admin", "analyst"],
  report: ["admin", "analyst"], partners: ["admin", "analyst"], audit: ["admin"], devices: ["admin", "analyst"],
  agreement: ["admin"], feed: ["admin"],
};
// navFor shows the navigation links of the pages the role sees.
function navFor(role) {
  for (const a of document.querySelectorAll("#nav a")) a.hidden = !(roles[a.dataset.page] || []).includes(role);
}
// navPage is the navigation entry a page belongs to.
const navPage = { object: "search", graph: "search", report: "browse", agreement: "partners", feed: "audit" };

async function route() {
  if (!state.csrf) return;
  const h = location.hash.replace(/^#\/?/, "") || "overview";
  const [pathPart, query] = h.split("?");
  const [page, ...rest] = pathPart.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
  const params = new URLSearchParams(query || "");
  const name = pages[page] ? page : "overview";
  const fn = pages[name];
  state.page = name;
  delete view().dataset.renderMs;
  // data-drawn names the address whose page is drawn (for tests and
  // scripts that wait for a page): unset while it is drawn.
  delete view().dataset.drawn;
  for (const a of document.querySelectorAll("#nav a")) {
    const on = a.dataset.page === name || a.dataset.page === navPage[name];
    a.classList.toggle("active", on);
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (!(roles[name] || []).includes(state.role)) {
    show(el("h1", {}, "Not for this key"), el("p", { class: "error", role: "alert" }, "This page is for " + (roles[name] || []).join(" and ") + " keys; this key's role is " + state.role + "."));
    return;
  }
  // Live pages redraw when events arrive.
  state.refresh = name === "overview" || name === "alerts" ? () => fn(arg, params).catch(fail) : null;
  // An alert's page redraws only when that alert changes.
  state.refreshIf = name === "alerts" && arg ? (type, d) => type === "alert" && d.id === arg : null;
  try { await fn(arg, params); } catch (e) { fail(e); }
  if (location.hash.replace(/^#\/?/, "") === h) view().dataset.drawn = "#/" + h;
}
window.addEventListener("hashchange", route);

// On load: resume the session, if any; fetch the map meanwhile.
let worldLoading = null;
async function world() {
  if (!worldLoading) worldLoading = fetch("static/world.json").then((r) => r.json()).catch((e) => { worldLoading = null; throw e; });
  return worldLoading;
}
world().catch(() => {});
api("session").then(signedIn).catch(() => showLogin());
