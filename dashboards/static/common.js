// citysoc console: shared helpers. Log content is attacker-controlled, so every value
// reaches the page through textContent or DOM attributes set here, never innerHTML.
"use strict";
(function () {
  const I18N = JSON.parse(document.getElementById("i18n-data").textContent);
  const PAGE = JSON.parse(document.getElementById("page-data").textContent);
  const LOCALE = PAGE.lang === "vi" ? "vi-VN" : "en-GB";

  function T(key) { return Object.prototype.hasOwnProperty.call(I18N, key) ? I18N[key] : key; }
  function can(perm) { return (PAGE.permissions || []).indexOf(perm) >= 0; }

  // Only our own paths and the ATT&CK site may become links.
  function safeHref(url) {
    if (typeof url !== "string") return "#";
    if (url.startsWith("/") && !url.startsWith("//") && url.indexOf("\\") < 0) return url;
    if (/^https:\/\/attack\.mitre\.org\/[A-Za-z0-9/._-]*$/.test(url)) return url;
    return "#";
  }

  // el("a", {href: "/x", class: "c", text: "label"}, child, "text", ...)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k === "href") node.setAttribute("href", safeHref(v));
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "title" || k === "type" || k === "value" || k === "name" || k === "id" || k === "colspan" ||
               k === "checked" || k === "disabled" || k === "selected" || k === "for" || k === "download" ||
               k === "aria-label" || k === "role" || k === "hidden") {
        if (k === "checked" || k === "disabled" || k === "selected" || k === "hidden") node[k] = !!v;
        else node.setAttribute(k, String(v));
      } else throw new Error("el: attribute not allowed: " + k);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  // Time: every timestamp is shown in one zone with the zone written beside it. The zone is
  // the site's (settings site.timezone) unless the person chose the browser's zone in the
  // header (a preference kept in this browser only).
  const TZ_PREF_KEY = "citysoc.tz";
  function tzPref() { try { return localStorage.getItem(TZ_PREF_KEY) === "browser" ? "browser" : "site"; } catch (e) { return "site"; } }
  function setTzPref(v) { try { localStorage.setItem(TZ_PREF_KEY, v === "browser" ? "browser" : "site"); } catch (e) { /* private mode */ } }
  function displayZone() {
    if (tzPref() === "browser") return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    return PAGE.site_zone || "Asia/Ho_Chi_Minh";
  }
  const partFmt = {};
  // Wall-clock parts of instant d in zone tz, and the zone's offset from UTC in minutes.
  function zoneParts(d, tz) {
    if (!partFmt[tz]) partFmt[tz] = new Intl.DateTimeFormat("en-US", {timeZone: tz, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
    const p = {};
    for (const x of partFmt[tz].formatToParts(d)) p[x.type] = x.value;
    const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    p.offset = Math.round((asUtc - Math.floor(d.getTime() / 1000) * 1000) / 60000);
    return p;
  }
  function offsetLabel(min) {
    const sign = min < 0 ? "-" : "+", a = Math.abs(min), h = String(Math.floor(a / 60)).padStart(2, "0"), m = a % 60;
    return "UTC" + sign + h + (m ? ":" + String(m).padStart(2, "0") : "");
  }
  // "2026-12-03 14:05:09 (UTC+07)": the same form in both languages, console, CLI and reports.
  function fmtDate(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    const p = zoneParts(d, displayZone());
    return p.year + "-" + p.month + "-" + p.day + " " + String(+p.hour % 24).padStart(2, "0") + ":" + p.minute + ":" +
      p.second + " (" + offsetLabel(p.offset) + ")";
  }
  function zoneOffset() { return offsetLabel(zoneParts(new Date(), displayZone()).offset); }
  function zoneLabel() { return displayZone() + " (" + offsetLabel(zoneParts(new Date(), displayZone()).offset) + ")"; }
  // <input type="datetime-local" step="1"> values in the display zone, seconds kept.
  function toZoneInput(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    const p = zoneParts(d, displayZone());
    return p.year + "-" + p.month + "-" + p.day + "T" + String(+p.hour % 24).padStart(2, "0") + ":" + p.minute + ":" + p.second;
  }
  function fromZoneInput(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value || "");
    if (!m) return "";
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    const tz = displayZone();
    let t = wall - zoneParts(new Date(wall), tz).offset * 60000;
    t = wall - zoneParts(new Date(t), tz).offset * 60000;  // second pass: offset at the instant itself (DST)
    return new Date(t).toISOString().replace(".000Z", "Z");
  }
  // Labels for values that come from data (centers, engines, asset types, triggers, audit
  // actions...): the catalog's "kind.value" when it has one, else the value as it is.
  function label(kind, value) {
    if (value === null || value === undefined || value === "") return "";
    const k = kind + "." + value;
    return Object.prototype.hasOwnProperty.call(I18N, k) ? I18N[k] : String(value);
  }
  // "{name}" placeholders filled from params (values as text; the result goes to textContent).
  function fmt(template, params) {
    return String(template).replace(/\{([a-z_0-9]+)\}/g, function (all, name) {
      return params && Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : all;
    });
  }
  // A message stored as {key, params} (runner and action texts, detector titles): the
  // catalog's template for the key, else the English text stored beside it.
  function msg(m, fallback) {
    if (m && typeof m === "object" && m.key && Object.prototype.hasOwnProperty.call(I18N, m.key)) {
      const params = {};
      for (const [k, v] of Object.entries(m.params || {})) {
        params[k] = (v && typeof v === "object" && v.key) ? msg(v, "")
          : (Array.isArray(v) ? v.map(function (x) { return x && typeof x === "object" && x.key ? msg(x, "") : x; }).join(", ") : v);
      }
      return fmt(I18N[m.key], params);
    }
    return fallback === undefined ? "" : String(fallback);
  }
  // A rule's title in the page's language: our pack's Vietnamese title, a detector message,
  // or the English title marked "(tiếng Anh)" so nobody mistakes it for a missing label.
  // ``plain``: without the marker (for text that is stored, e.g. a case title).
  function ruleTitle(ruleId, englishTitle, message, plain) {
    if (PAGE.lang !== "vi") return englishTitle || ruleId;
    if (message && message.key && Object.prototype.hasOwnProperty.call(I18N, message.key)) return msg(message);
    const vi = (PAGE.rule_titles_vi || {})[ruleId];
    if (vi) return vi;
    return (englishTitle || ruleId) + (plain ? "" : " " + T("lang.english_marker"));
  }
  // A person as the console names them: "user:resp2" (how the API records an actor) is "resp2";
  // system actors ("system:demo", "apikey:...") stay as they are.
  function actorName(actor) { return actor ? String(actor).replace(/^user:/, "") : ""; }
  // An incident's rules for display: in Vietnamese each rule's catalog title where it has one
  // (the stored titles are the English ones the detectors wrote), else the English title, marked.
  function incidentRules(inc) {
    const ids = inc.rules || [], titles = inc.rule_titles || [];
    if (PAGE.lang !== "vi") return titles.length ? titles : ids;
    const aligned = titles.length === ids.length;
    return ids.map(function (id, k) { return ruleTitle(id, aligned ? titles[k] : id, null); });
  }
  function fmtNum(n) { return (typeof n === "number") ? n.toLocaleString(LOCALE) : (n === null || n === undefined ? "" : String(n)); }

  class ApiError extends Error {
    constructor(status, detail) { super(typeof detail === "string" ? detail : JSON.stringify(detail)); this.status = status; this.detail = detail; }
  }

  async function api(method, url, body) {
    const opts = {method: method, credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (method !== "GET" && method !== "HEAD") {
      if (PAGE.csrf) opts.headers["X-CSRF-Token"] = PAGE.csrf;
      if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    }
    const r = await fetch(url, opts);
    if (r.status === 401 && PAGE.page !== "login") {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new ApiError(401, "signed out");
    }
    const ct = r.headers.get("content-type") || "";
    const data = ct.indexOf("json") >= 0 ? await r.json() : await r.text();
    if (!r.ok) throw new ApiError(r.status, data && data.detail !== undefined ? data.detail : data);
    return data;
  }

  function errorText(e) {
    if (e && e.detail && e.detail.message) return e.detail.message;
    return e && e.message ? e.message : String(e);
  }
  // An approval refused by four eyes (403 "four eyes: ...") said in the page's language.
  function decisionError(e) {
    const msg = errorText(e);
    return e && e.status === 403 && /^four eyes/.test(msg) ? T("playbook.four_eyes") : msg;
  }

  let toastTimer = null;
  function toast(msg, isError) {
    const t = document.getElementById("toast");
    if (!t) return;
    t.textContent = msg;
    t.className = isError ? "error" : "";
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, 4000);
  }

  // Lucene: quote a value for field:"value" (backslash and quote escaped).
  function quoteValue(v) { return '"' + String(v).replace(/[\\"]/g, function (m) { return "\\" + m; }) + '"'; }
  function pivotHref(field, value, range) {
    let u = "/search?q=" + encodeURIComponent(field + ":" + quoteValue(value));
    if (range) u += "&from=" + encodeURIComponent(range);
    return u;
  }
  function levelBadge(level) {
    return el("span", {class: "badge lvl-" + (/^[a-z]+$/.test(level) ? level : "unknown"), text: T("level." + level)});
  }
  // ATT&CK tags: attack.t1110.001 -> T1110.001 linked to attack.mitre.org; tactics as words.
  function attackLinks(tags) {
    const frag = document.createDocumentFragment();
    for (const tag of tags || []) {
      const m = /^attack\.(t\d{4})(?:\.(\d{3}))?$/i.exec(tag);
      if (m) {
        const id = m[1].toUpperCase() + (m[2] ? "." + m[2] : "");
        const url = "https://attack.mitre.org/techniques/" + m[1].toUpperCase() + (m[2] ? "/" + m[2] : "") + "/";
        frag.append(el("a", {href: url, class: "tag", title: tag, text: id}), " ");
      } else if (/^attack\./i.test(tag)) {
        const tactic = tag.slice(7).toLowerCase().replace(/-/g, "_");
        frag.append(el("span", {class: "tag tactic", title: tag, text: label("tactic", tactic).replace(/_/g, " ")}), " ");
      }
    }
    return frag;
  }

  function applyPermissions() {
    for (const node of document.querySelectorAll("[data-needs]")) {
      if (!can(node.dataset.needs)) node.hidden = true;
    }
  }

  // The header's time-zone switch (site zone or this browser's), when the page has one.
  function timePreference() {
    const sel = document.getElementById("tz-pref");
    if (!sel) return;
    sel.value = tzPref();
    const opt = sel.querySelector('option[value="site"]');
    if (opt) opt.textContent = T("time.zone_site") + ": " + (PAGE.site_zone || "") + " (" + offsetLabel(zoneParts(new Date(), PAGE.site_zone || "UTC").offset) + ")";
    sel.addEventListener("change", function () { setTzPref(sel.value); location.reload(); });
    for (const n of document.querySelectorAll("[data-zone-note]")) n.textContent = fmt(T("time.shown_in"), {zone: zoneLabel()});
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyPermissions();
    timePreference();
    const lo = document.getElementById("logout");
    if (lo) lo.addEventListener("click", async function () {
      try { await api("POST", "/api/v1/auth/logout"); } catch (e) { /* already signed out */ }
      location.assign("/login");
    });
  });

  window.CS = {T, PAGE, LOCALE, can, el, clear, fmtDate, fmtNum, zoneLabel, zoneOffset, displayZone, toZoneInput, fromZoneInput,
               label, fmt, msg, ruleTitle, incidentRules, actorName, api, ApiError, errorText, decisionError, toast, quoteValue,
               pivotHref, levelBadge, attackLinks, safeHref};
})();
