// VeeamGateway status page: renders GET /v1/status every few seconds. No library, no inline
// script (the page's Content-Security-Policy forbids it), no storage: the API key typed in is
// sent once in a header to POST /v1/auth/session, which answers an HttpOnly cookie this script
// cannot read; the key itself is dropped from the form at once.
"use strict";

const REFRESH_MS = 3000;
const SVG = "http://www.w3.org/2000/svg";
let timer = null;

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function mark(state) {
  return el("span", { class: "mark " + state, "data-mark": state }, state);
}

function triple(windows, format) {
  const f = format || ((v) => (v === null || v === undefined ? "–" : String(v)));
  return [windows["1m"], windows["5m"], windows["15m"]].map(f).join(" / ");
}

function percent(v) {
  return v === null || v === undefined ? "–" : (v * 100).toFixed(v < 0.1 ? 2 : 1) + " %";
}

function since(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso || "";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  const ago = s < 90 ? s + " s" : s < 5400 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
  return new Date(t).toISOString().replace(".000", "").replace("T", " ") + " (" + ago + " ago)";
}

// An inline SVG line chart of `values` (nulls leave gaps).
function chart(values, options) {
  const width = options.width || 300;
  const height = options.height || 70;
  const max = options.max !== undefined ? options.max : Math.max(1, ...values.filter((v) => v !== null));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", options.label || "chart");
  const base = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, stroke: "#d1d9e0", "stroke-width": 1 })) base.setAttribute(k, v);
  svg.append(base);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  let path = "";
  let pen = false;
  const dots = [];
  values.forEach((v, i) => {
    if (v === null || v === undefined) { pen = false; return; }
    const x = (i * step).toFixed(1);
    const y = (height - 2 - (Math.min(v, max) / max) * (height - 4)).toFixed(1);
    const alone = (i === 0 || values[i - 1] === null || values[i - 1] === undefined) && (i === values.length - 1 || values[i + 1] === null || values[i + 1] === undefined);
    if (alone) dots.push([x, y]);
    path += (pen ? "L" : "M") + x + " " + y + " ";
    pen = true;
  });
  const line = document.createElementNS(SVG, "path");
  for (const [k, v] of Object.entries({ d: path.trim() || "M0 0", fill: "none", stroke: options.color || "#0969da", "stroke-width": 1.5 })) line.setAttribute(k, v);
  svg.append(line);
  for (const [x, y] of dots) {
    const dot = document.createElementNS(SVG, "circle");
    for (const [k, v] of Object.entries({ cx: x, cy: y, r: 2, fill: options.color || "#0969da" })) dot.setAttribute(k, v);
    svg.append(dot);
  }
  const title = document.createElementNS(SVG, "title");
  title.textContent = `${options.label || ""} (max ${options.max !== undefined ? options.max : max})`;
  svg.append(title);
  return svg;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function render(status) {
  const overall = document.getElementById("overall");
  overall.className = "mark " + status.mark;
  overall.dataset.mark = status.mark;
  overall.textContent = status.mark;
  document.getElementById("meta").textContent =
    `up since ${since(status.gateway.startedAt)} · shared tier: ${status.sharedTier || "none configured"}` +
    (status.sharedCache ? ` · shared cache: ${status.sharedCache.hits} hits, ${status.sharedCache.misses} fills, ` +
      `${status.sharedCache.lockWaits} waits, ${status.sharedCache.fallbacks} fallbacks` : "");

  // Each VSPC upstream's customer drift as last joined; the records are at GET /v1/customers/drift.
  const drift = status.customerDrift || [];
  document.getElementById("customer-drift").textContent = drift.length === 0 ? "" :
    "customers' drift: " + drift.map((d) => {
      const kinds = Object.entries(d.byKind).filter(([, n]) => n > 0).map(([kind, n]) => `${n} ${kind}`).join(", ");
      return `${d.upstream} ${d.count}` + (kinds ? ` (${kinds})` : "") + ` as of ${since(d.joinedAt)}`;
    }).join(" · ") + ` — GET ${drift[0].report}`;

  // The change feed's webhooks: what each delivered, failed and still has to send.
  const hooks = status.webhooks || [];
  document.getElementById("webhooks").textContent = hooks.length === 0 ? "" :
    "webhooks: " + hooks.map((h) =>
      `${h.id} ${h.state}: ${h.delivered} delivered, ${h.pending} pending` +
      (h.failed ? `, ${h.failed} given up` : "") + (h.missed ? `, ${h.missed} missed` : "") +
      (h.lastError ? ` (last error ${h.lastError} ${since(h.lastErrorAt)})` : "")).join(" · ");

  fill(document.querySelector("#upstreams tbody"), status.upstreams.map((u) => {
    const accounts = el("td", { class: "wrap" }, ...u.accounts.map((a) =>
      el("span", { class: "account account-" + a.state, title: a.lastLogin ? "last login " + since(a.lastLogin) : "no login yet" },
        `${a.username}: ${a.state}` + (a.expiresInSeconds !== null && a.expiresInSeconds !== undefined ? `, ${Math.round(a.expiresInSeconds / 60)} min left` : "") +
        (a.refreshing ? ", refreshing" : "") + (a.failedLogins ? `, ${a.failedLogins} failed logins` : ""))));
    const problem = [u.reason, u.lastError ? `${u.lastError.code} at ${since(u.lastError.at)}` : null, u.throttledForSeconds ? `throttled for ${u.throttledForSeconds} s` : null]
      .filter(Boolean).join(" · ");
    const spark = el("td", { class: "spark" });
    spark.append(chart(u.series.requests, { width: 120, height: 24, label: `${u.name} calls`, color: "#0969da" }));
    return el("tr", { "data-upstream": u.name, "data-mark": u.mark },
      el("td", null, el("strong", null, u.name), el("br"), el("span", { class: "muted" }, `${u.product} · ${u.baseURL}`)),
      el("td", null, mark(u.mark)),
      el("td", null, since(u.since)),
      el("td", null, u.apiVersion || "–"),
      accounts,
      el("td", null, triple(u.calls.requests)),
      el("td", null, triple(u.calls.errors)),
      el("td", { class: "wrap error-cell" }, problem || "–"),
      spark);
  }));

  const g = status.gateway;
  document.getElementById("gateway-summary").textContent =
    `${g.calls.perSecond["1m"]} req/s over 1 min · error ratio ${triple(g.calls.errorRatio, percent)} · p99 ${triple(g.p99Ms)} ms`;
  fill(document.querySelector("#routes tbody"), g.routes.map((r) =>
    el("tr", null, el("td", null, r.route), el("td", null, r.calls.perSecond["1m"]), el("td", null, triple(r.calls.errorRatio, percent)), el("td", null, triple(r.p99Ms)))));
  const c = status.cache;
  document.getElementById("cache-summary").textContent =
    `Cache: ${c.entries} entries, ${(c.bytes / 1048576).toFixed(1)} of ${(c.maxBytes / 1048576).toFixed(0)} MiB · hit ratio ${triple(c.hitRatio, percent)} · stale answers ${triple(c.staleServed)} · ${c.evictions} evictions`;

  document.getElementById("chart-requests").replaceChildren(chart(g.series.requests, { label: "requests per 10 s" }));
  document.getElementById("chart-errors").replaceChildren(chart(g.series.errors, { label: "errors per 10 s", color: "#cf222e" }));
  document.getElementById("chart-cache").replaceChildren(chart(g.series.cacheHitRatio || [], { label: "cache hit ratio", max: 1, color: "#1a7f37" }));

  fill(document.querySelector("#problems tbody"), status.problems.map((p) =>
    el("tr", null, el("td", null, since(p.at) + (p.count > 1 ? ` (×${p.count})` : "")), el("td", null, p.route), el("td", null, p.status), el("td", null, p.code),
      el("td", null, p.upstream || "–"), el("td", null, p.requestId), el("td", null, p.tenant || "–"), el("td", null, p.caller || "–"))));
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

function showLogin(message) {
  if (timer) { clearTimeout(timer); timer = null; }
  document.getElementById("board").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
  document.getElementById("key").focus();
}

async function refresh() {
  timer = null;
  try {
    const response = await fetch("/v1/status", { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
    if (response.status === 401 || response.status === 403) {
      showLogin(response.status === 403 ? "That key is not a PortalAdministrator's." : "");
      return;
    }
    if (!response.ok) throw new Error("status " + response.status);
    render(await response.json());
    document.getElementById("login").hidden = true;
    document.getElementById("board").hidden = false;
  } catch (error) {
    document.getElementById("updated").textContent = "the gateway did not answer (" + error.message + "); retrying";
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("key");
  const key = input.value;
  input.value = "";
  const response = await fetch("/v1/auth/session", { method: "POST", credentials: "same-origin", cache: "no-store", headers: { "X-API-Key": key } });
  if (!response.ok) {
    showLogin(response.status === 403 ? "That key is not a PortalAdministrator's." : "The key was refused.");
    return;
  }
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("interval").textContent = String(REFRESH_MS / 1000);
  document.getElementById("login-form").addEventListener("submit", signIn);
  // `vgw_status_open` (no secret) says a session cookie was set: ask for the status; else the key.
  if (document.cookie.split(";").some((c) => c.trim().startsWith("vgw_status_open="))) refresh(); else showLogin("");
});
