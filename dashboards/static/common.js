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

  function fmtDate(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleString(LOCALE, {year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
                                     minute: "2-digit", second: "2-digit"});
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
        frag.append(el("span", {class: "tag tactic", text: tag.slice(7).replace(/[_-]/g, " ")}), " ");
      }
    }
    return frag;
  }

  function applyPermissions() {
    for (const node of document.querySelectorAll("[data-needs]")) {
      if (!can(node.dataset.needs)) node.hidden = true;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyPermissions();
    const lo = document.getElementById("logout");
    if (lo) lo.addEventListener("click", async function () {
      try { await api("POST", "/api/v1/auth/logout"); } catch (e) { /* already signed out */ }
      location.assign("/login");
    });
  });

  window.CS = {T, PAGE, LOCALE, can, el, clear, fmtDate, fmtNum, api, ApiError, errorText, toast, quoteValue,
               pivotHref, levelBadge, attackLinks, safeHref};
})();
