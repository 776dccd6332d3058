// Entente dashboard: plain JavaScript, no framework, no CDN. Pages are
// drawn from the node's JSON under /ui/api/; live updates arrive as
// server-sent events from /ui/api/events.
"use strict";

const state = { csrf: "", role: "", world: null, es: null, page: "", refresh: null };

// el builds an element; strings become text nodes (never HTML).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
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
  if (r.status === 401 && path !== "login") { showLogin(); throw new Error(j.error || "sign in"); }
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

function age(t) {
  if (!t) return "";
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return Math.round(s) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 86400) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}
function fmt(t) { return t ? new Date(t).toISOString().replace("T", " ").slice(0, 19) : ""; }
const objLink = (id) => el("a", { href: "#/object/" + encodeURIComponent(id), class: "obj" }, id);
const view = () => document.getElementById("view");
function show(...kids) { view().replaceChildren(...kids.filter((k) => k !== null && k !== undefined)); }
function fail(e) { show(el("p", { class: "error", role: "alert" }, String(e.message || e))); }

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
  const tl = svg("svg", { class: "timeline", viewBox: "0 0 " + o.timeline.length * 10 + " 100", preserveAspectRatio: "none", role: "img", "aria-label": "timeline" });
  const maxT = Math.max(1, ...o.timeline.map((b) => b.sightings + b.alerts));
  o.timeline.forEach((b, i) => {
    const hs = (90 * b.sightings) / maxT, ha = (90 * b.alerts) / maxT;
    const r1 = svg("rect", { class: "s", x: i * 10 + 1, y: 100 - hs, width: 8, height: hs });
    const r2 = svg("rect", { class: "a", x: i * 10 + 1, y: 100 - hs - ha, width: 8, height: ha });
    const t = svg("title", {}); t.textContent = fmt(b.start) + ": " + b.sightings + " sightings, " + b.alerts + " alerts";
    r1.append(t); tl.append(r1, r2);
  });
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
      el("div", { class: "panel" }, el("h2", {}, "Timeline"), tl, el("p", { class: "muted" }, fmt(o.since) + " – " + fmt(o.until) + " UTC")),
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
  const sel = el("select", { id: "status", onchange: (e) => { location.hash = "#/alerts" + (e.target.value ? "?status=" + e.target.value : ""); } },
    ...["", "new", "escalated", "acknowledged", "resolved"].map((v) => el("option", { value: v, selected: v === status }, v || "any status")));
  show(
    el("div", { class: "toolbar" }, el("h1", {}, "Alerts"), sel, el("span", { class: "muted" }, all.length > alerts.length ? "the " + alerts.length + " most recent of " + all.length + " alerts" : all.length + " alerts")),
    el("div", { class: "panel" }, el("table", { id: "alerts-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Tier"), el("th", {}, "Status"), el("th", {}, "Organisations"), el("th", {}, "Countries"), el("th", {}, "Age"), el("th", { class: "hide-narrow" }, "Threat"))),
      el("tbody", {}, (alerts || []).map((a) => el("tr", { "data-id": a.id, "data-status": a.status },
        el("td", {}, el("a", { href: "#/alerts/" + encodeURIComponent(a.id) }, el("span", { class: "tier " + a.tier }, a.tier))),
        el("td", { class: "status-" + a.status }, a.status),
        el("td", {}, a.organisations),
        el("td", {}, (a.countries || []).join(" ")),
        el("td", { title: fmt(a.first_seen) }, age(a.first_seen)),
        el("td", { class: "hide-narrow wrap" }, objLink(a.threat))))))));
};

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
    el("p", { class: "wrap" }, "Alert ", el("code", {}, d.id), " on threat ", objLink(d.threat)),
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

pages.search = async (arg, params) => {
  const q = params.get("q") || "";
  const input = el("input", { id: "search-input", type: "search", value: q, placeholder: "an id, IP, domain, URL, e-mail or hash", "aria-label": "search" });
  const form = el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); location.hash = "#/search?q=" + encodeURIComponent(input.value.trim()); } },
    el("h1", {}, "Search"), input, el("button", { type: "submit", class: "primary" }, "Search"));
  if (!q) { show(form); input.focus(); return; }
  let res;
  try { res = (await api("search?q=" + encodeURIComponent(q))).results; }
  catch (e) { show(form, el("p", { class: "error", role: "alert" }, e.message)); return; }
  show(form, el("div", { class: "panel" }, res.length === 0 ? el("p", { id: "search-none" }, "Nothing found.") :
    el("table", { id: "search-results" },
      el("thead", {}, el("tr", {}, el("th", {}, "Object"), el("th", {}, "Type"), el("th", {}, "Why"), el("th", { class: "hide-narrow" }, "Collection"))),
      el("tbody", {}, (res || []).map((r) => el("tr", {},
        el("td", { class: "wrap" }, el("a", { href: "#/object/" + encodeURIComponent(r.id) }, r.name || r.id)),
        el("td", {}, r.type), el("td", {}, r.why), el("td", { class: "hide-narrow", title: r.collection }, r.collection_title || r.collection)))))));
};

pages.object = async (id) => {
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
};

pages.partners = async () => {
  const out = [el("h1", {}, "Partners and agreements")];
  try {
    const { partners } = await api("partners");
    out.push(el("div", { class: "panel" }, el("table", { id: "partners" },
      el("thead", {}, el("tr", {}, el("th", {}, "Partner"), el("th", {}, "Country"), el("th", {}, "Agreement"), el("th", {}, ""))),
      el("tbody", {}, (partners || []).map((r) => el("tr", {},
        el("td", {}, r.partner.name || r.partner.id), el("td", {}, r.partner.country),
        el("td", {}, r.agreement ? agreementSummary(r.agreement) : el("span", { class: "muted" }, "no agreement: receives nothing")),
        el("td", {}, el("button", { type: "button", onclick: (e) => preview(r.partner.id, e.target) }, "Preview"))))))));
  } catch (e) { out.push(el("p", { class: "error" }, e.message)); }
  out.push(el("div", { id: "preview" }));
  out.push(...await blindPanel());
  try {
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
        const pct = limit ? Math.min(100, Math.round(100 * b.used / Number(limit))) : 0;
        return el("tr", {}, el("td", { class: "wrap" }, b.name || b.partner),
          el("td", {}, (b.collections || []).join(", ")),
          el("td", {}, el("meter", { min: "0", max: "100", value: String(pct), title: pct + "%" }), " " + b.used + " of " + b.budget),
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
    el("li", {}, "collections: " + (a.collections || []).join(", ")),
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
      el("thead", {}, el("tr", {}, el("th", {}, "Feed"), el("th", {}, "Format"), el("th", {}, "Last run"), el("th", {}, "Status"))),
      el("tbody", {}, (feeds || []).map((f) => el("tr", {}, el("td", { class: "wrap" }, f.name, el("br"), el("span", { class: "muted" }, f.url)),
        el("td", {}, f.format), el("td", {}, fmt(f.last_run)), el("td", { class: f.last_error ? "error" : "" }, f.last_error || (f.last_run ? "ok" : "not polled yet"))))))));
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

// ---- routing ----
async function route() {
  if (!state.csrf) return;
  const h = location.hash.replace(/^#\/?/, "") || "overview";
  const [pathPart, query] = h.split("?");
  const [page, ...rest] = pathPart.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
  const params = new URLSearchParams(query || "");
  const fn = pages[page] || pages.overview;
  state.page = page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page || (page === "object" && a.dataset.page === "search"));
  // Live pages redraw when events arrive.
  state.refresh = page === "overview" || page === "alerts" ? () => fn(arg, params).catch(fail) : null;
  // An alert's page redraws only when that alert changes.
  state.refreshIf = page === "alerts" && arg ? (type, d) => type === "alert" && d.id === arg : null;
  try { await fn(arg, params); } catch (e) { fail(e); }
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
