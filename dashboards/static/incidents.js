// Incident queue: one row per attacker against one center (open ones by default), sorted by
// risk, expandable to its alerts; filters are drop-downs fed by /incidents/facets and kept in
// the URL; bulk triage works on the page or on every matching incident ("select all matching").
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, errorText, toast, levelBadge} = CS;
  const FIELDS = ["status", "rule_id", "center", "asset_id", "assignee", "level", "from", "sort"];
  const DEFAULTS = {status: "open", sort: "-risk_score"};
  const OPEN = ["new", "acknowledged", "in_progress"];
  const MAX_SHOWN = 3;
  let state = {offset: 0, limit: 50, total: 0, pageIds: []};
  let selected = new Set();
  let allMatching = false;

  function fmt(key, n) { return T(key).replace("{n}", fmtNum(n)); }

  function readUrl() {
    const p = new URLSearchParams(location.search);
    const f = document.getElementById("filters");
    for (const name of FIELDS) {
      const v = p.get(name) || DEFAULTS[name] || "";
      const sel = f.elements[name];
      if (v && !Array.from(sel.options).some(function (o) { return o.value === v; })) sel.append(el("option", {value: v, text: sel.name === "center" ? CS.label("center", v) : v}));
      sel.value = v;
    }
    state.offset = Math.max(0, parseInt(p.get("offset") || "0", 10) || 0);
    state.limit = [25, 50, 100, 200].indexOf(parseInt(p.get("limit"), 10)) >= 0 ? parseInt(p.get("limit"), 10) : 50;
    document.getElementById("page-size").value = String(state.limit);
  }

  // URL form (defaults left out) and the API form (status "open" -> the three open statuses).
  function urlParams() {
    const f = document.getElementById("filters");
    const p = new URLSearchParams();
    for (const name of FIELDS) { const v = f.elements[name].value; if (v && v !== DEFAULTS[name]) p.set(name, v); }
    if (state.offset) p.set("offset", String(state.offset));
    if (state.limit !== 50) p.set("limit", String(state.limit));
    return p;
  }
  function apiParams() {
    const f = document.getElementById("filters");
    const p = new URLSearchParams();
    for (const name of FIELDS) {
      const v = f.elements[name].value;
      if (!v) continue;
      if (name === "status") {
        if (v === "open") for (const s of OPEN) p.append("status", s);
        else if (v !== "all") p.append("status", v);
      } else p.set(name, v);
    }
    return p;
  }

  async function loadFacets() {
    let facets;
    try { facets = await api("GET", "/api/v1/incidents/facets"); } catch (e) { toast(errorText(e), true); return; }
    for (const sel of document.querySelectorAll("select[data-facet]")) {
      const keep = sel.value;
      for (const v of facets[sel.dataset.facet] || []) {
        if (!Array.from(sel.options).some(function (o) { return o.value === v; })) sel.append(el("option", {value: v, text: sel.name === "center" ? CS.label("center", v) : v}));
      }
      sel.value = keep;
    }
  }

  function listCell(values, total) {
    const td = el("td", {});
    const shown = (values || []).slice(0, MAX_SHOWN);
    shown.forEach(function (v, i) { if (i) td.append(", "); td.append(String(v)); });
    const more = Math.max(total || 0, (values || []).length) - shown.length;
    if (more > 0) td.append(" ", el("span", {class: "muted small", text: fmt("incidents.more", more)}));
    return td;
  }

  function row(i) {
    const box = el("input", {type: "checkbox", "aria-label": T("alerts.select"), checked: selected.has(i.id)});
    box.dataset.id = String(i.id);
    box.addEventListener("change", function () {
      if (box.checked) selected.add(i.id); else { selected.delete(i.id); allMatching = false; }
      syncHeader();
    });
    const exp = el("button", {type: "button", class: "mini expand", "aria-label": T("incidents.expand"), title: T("incidents.expand"), text: "▸"});
    exp.addEventListener("click", function () { toggle(i, exp); });
    const rules = CS.incidentRules(i);
    const tr = el("tr", {dataset: {id: String(i.id)}},
      el("td", {}, box), el("td", {}, exp),
      el("td", {}, levelBadge(i.level)),
      el("td", {class: "num", text: fmtNum(i.risk_score)}),
      el("td", {}, el("span", {class: "attacker", text: i.attacker}), i.case_id ? el("a", {href: "/cases/" + encodeURIComponent(i.case_id), class: "tag", text: T("incidents.case") + " #" + i.case_id}) : null),
      el("td", {text: CS.label("center", i.center)}),
      el("td", {class: "num", text: fmtNum(i.alert_count) + " (" + fmtNum(i.detection_count) + ")"}),
      listCell(i.targets, i.target_count), listCell(rules, rules.length),
      el("td", {}, el("span", {class: "status st-" + i.status, text: T("status." + i.status)})),
      el("td", {text: i.assignee || ""}),
      el("td", {class: "time", text: fmtDate(i.first_seen)}), el("td", {class: "time", text: fmtDate(i.last_seen)}));
    return tr;
  }

  async function toggle(i, btn) {
    const tr = btn.closest("tr");
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("incident-alerts")) { next.remove(); btn.textContent = "▸"; return; }
    btn.textContent = "▾";
    let alerts;
    try { alerts = await api("GET", "/api/v1/incidents/" + encodeURIComponent(i.id) + "/alerts?limit=200"); }
    catch (e) { toast(errorText(e), true); btn.textContent = "▸"; return; }
    const inner = el("table", {class: "data inner"},
      el("thead", {}, el("tr", {}, el("th", {text: T("alert.level")}), el("th", {text: T("alert.rule")}),
        el("th", {text: T("incidents.targets")}), el("th", {text: T("alert.status")}), el("th", {text: T("alert.count")}),
        el("th", {text: T("alert.first_seen")}), el("th", {text: T("alert.last_seen")}))));
    const body = el("tbody", {});
    for (const a of alerts) {
      body.append(el("tr", {dataset: {alertId: String(a.id)}}, el("td", {}, levelBadge(a.level)),
        el("td", {}, el("a", {href: "/alerts/" + encodeURIComponent(a.id), text: CS.ruleTitle(a.rule_id, a.rule_title, a.title_msg)})),
        // what each alert was about: in Vietnamese its title is the rule's, so the targets say
        // which host it was (the English title names it: "Port scan of 10.20.0.20 ...")
        (a.targets && a.targets.length) ? listCell(a.targets, a.targets.length)
          : el("td", {text: (a.entities && (a.entities.host || a.entities.destination_ip)) || ""}),
        el("td", {}, el("span", {class: "status st-" + a.status, text: T("status." + a.status)})),
        el("td", {class: "num", text: fmtNum(a.count)}),
        el("td", {class: "time", text: fmtDate(a.first_seen)}), el("td", {class: "time", text: fmtDate(a.last_seen)})));
    }
    inner.append(body);
    const cell = el("td", {colspan: "13"}, alerts.length ? inner : el("p", {class: "muted", text: T("incidents.no_alerts")}));
    tr.after(el("tr", {class: "incident-alerts", dataset: {incident: String(i.id)}}, cell));
  }

  async function load() {
    const up = urlParams();
    history.replaceState(null, "", "/incidents" + (up.toString() ? "?" + up.toString() : ""));
    const p = apiParams();
    p.set("limit", String(state.limit));
    p.set("offset", String(state.offset));
    let page;
    try { page = await api("GET", "/api/v1/incidents?" + p.toString()); }
    catch (e) { toast(errorText(e), true); document.body.dataset.loaded = "1"; return; }
    const body = clear(document.getElementById("incidents-body"));
    const frag = document.createDocumentFragment();
    state.pageIds = [];
    for (const i of page.items) { frag.append(row(i)); state.pageIds.push(i.id); }
    body.append(frag);
    state.total = page.total;
    document.getElementById("empty").hidden = page.items.length > 0;
    const more = page.total_relation === "gte" ? "+" : "";
    document.getElementById("total").textContent = "(" + fmtNum(page.total) + more + ")";
    const from = page.items.length ? state.offset + 1 : 0;
    document.getElementById("page-info").textContent = T("pager.range").replace("{from}", fmtNum(from))
      .replace("{to}", fmtNum(state.offset + page.items.length)).replace("{total}", fmtNum(page.total) + more);
    document.getElementById("prev").disabled = state.offset === 0;
    document.getElementById("next").disabled = state.offset + page.items.length >= page.total;
    syncHeader();
    document.body.dataset.loaded = "1";
  }

  // The header box mirrors the page: ticked only when every row shown is selected.
  function syncHeader() {
    const head = document.getElementById("select-all");
    const onPage = state.pageIds.filter(function (id) { return selected.has(id); }).length;
    head.checked = state.pageIds.length > 0 && onPage === state.pageIds.length;
    head.indeterminate = onPage > 0 && onPage < state.pageIds.length;
    document.getElementById("selected-count").textContent = fmtNum(selected.size);
    for (const b of document.querySelectorAll("[data-bulk], #make-case")) b.disabled = selected.size === 0;
    const banner = document.getElementById("all-banner");
    const btn = document.getElementById("select-matching");
    if (allMatching) {
      document.getElementById("all-text").textContent = fmt("incidents.all_selected", selected.size);
      btn.textContent = T("incidents.clear_selection");
      btn.dataset.mode = "clear";
      banner.hidden = false;
    } else if (head.checked && state.total > state.pageIds.length) {
      document.getElementById("all-text").textContent = fmt("incidents.page_selected", state.pageIds.length);
      btn.textContent = fmt("incidents.select_matching", state.total);
      btn.dataset.mode = "all";
      banner.hidden = false;
    } else banner.hidden = true;
  }

  async function selectMatching() {
    const btn = document.getElementById("select-matching");
    if (btn.dataset.mode === "clear") { selected.clear(); allMatching = false; await load(); return; }
    let r;
    try { r = await api("GET", "/api/v1/incidents/ids?" + apiParams().toString()); }
    catch (e) { toast(errorText(e), true); return; }
    selected = new Set(r.ids);
    allMatching = true;
    if (r.truncated) toast(fmt("incidents.truncated", r.ids.length), true);
    for (const box of document.querySelectorAll("#incidents-body > tr > td > input[type=checkbox]")) box.checked = selected.has(Number(box.dataset.id));
    syncHeader();
  }

  async function bulk(kind) {
    const body = {ids: Array.from(selected)};
    if (kind === "assign") body.assignee = document.getElementById("bulk-assignee").value.trim() || null;
    else {
      body.status = kind;
      if (kind === "closed") body.resolution = document.getElementById("bulk-resolution").value;
    }
    try {
      const r = await api("POST", "/api/v1/incidents/bulk", body);
      toast(T("alerts.bulk_done").replace("{ok}", fmtNum(r.updated)).replace("{failed}", fmtNum(r.failed)), r.failed > 0);
      selected.clear();
      allMatching = false;
      await load();
    } catch (e) { toast(errorText(e), true); }
  }

  async function makeCase() {
    const ids = Array.from(selected);
    const first = document.querySelector("#incidents-body tr[data-id='" + ids[0] + "'] .attacker");
    const title = T("cases.from_incidents").replace("{n}", fmtNum(ids.length)).replace("{who}", first ? first.textContent : "#" + ids[0]);
    try {
      const c = await api("POST", "/api/v1/cases", {title: title, incident_ids: ids.slice(0, 100)});
      location.assign("/cases/" + encodeURIComponent(c.id));
    } catch (e) { toast(errorText(e), true); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    readUrl();
    const f = document.getElementById("filters");
    f.addEventListener("submit", function (ev) { ev.preventDefault(); });
    f.addEventListener("change", function () { state.offset = 0; selected.clear(); allMatching = false; load(); });
    document.getElementById("reset").addEventListener("click", function () { history.replaceState(null, "", "/incidents"); readUrl(); selected.clear(); allMatching = false; load(); });
    document.getElementById("prev").addEventListener("click", function () { state.offset = Math.max(0, state.offset - state.limit); load(); });
    document.getElementById("next").addEventListener("click", function () { state.offset += state.limit; load(); });
    document.getElementById("page-size").addEventListener("change", function (ev) { state.limit = parseInt(ev.target.value, 10); state.offset = 0; load(); });
    document.getElementById("select-all").addEventListener("change", function (ev) {
      for (const box of document.querySelectorAll("#incidents-body > tr > td > input[type=checkbox]")) {
        box.checked = ev.target.checked;
        const id = Number(box.dataset.id);
        if (box.checked) selected.add(id); else selected.delete(id);
      }
      if (!ev.target.checked) allMatching = false;
      syncHeader();
    });
    document.getElementById("select-matching").addEventListener("click", selectMatching);
    for (const b of document.querySelectorAll("[data-bulk]")) b.addEventListener("click", function () { bulk(b.dataset.bulk); });
    document.getElementById("make-case").addEventListener("click", makeCase);
    loadFacets().then(readUrl).then(load);
  });
})();
