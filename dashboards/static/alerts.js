// Alert queue: filters and sort kept in the URL (bookmarkable), server-side paging,
// bulk triage, and new alerts arriving live over Server-Sent Events.
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, can, errorText, toast, levelBadge} = CS;
  const MULTI = ["status", "level"];
  const SINGLE = ["center", "rule_id", "assignee", "host", "from", "sort"];
  let state = {offset: 0, limit: 50};
  let selected = new Set();
  let pendingNew = 0;
  let shownIds = new Set();

  function readUrl() {
    const p = new URLSearchParams(location.search);
    const f = document.getElementById("filters");
    for (const name of MULTI) {
      const vals = p.getAll(name);
      for (const box of f.querySelectorAll("input[name=" + name + "]")) box.checked = vals.indexOf(box.value) >= 0;
    }
    for (const name of SINGLE) { if (f.elements[name]) f.elements[name].value = p.get(name) || (name === "sort" ? "-last_seen" : ""); }
    state.offset = Math.max(0, parseInt(p.get("offset") || "0", 10) || 0);
    state.limit = [25, 50, 100, 200].indexOf(parseInt(p.get("limit"), 10)) >= 0 ? parseInt(p.get("limit"), 10) : 50;
    document.getElementById("page-size").value = String(state.limit);
  }

  function params() {
    const f = document.getElementById("filters");
    const p = new URLSearchParams();
    for (const name of MULTI) for (const box of f.querySelectorAll("input[name=" + name + "]:checked")) p.append(name, box.value);
    for (const name of SINGLE) { const v = f.elements[name].value.trim(); if (v && !(name === "sort" && v === "-last_seen")) p.set(name, v); }
    if (state.offset) p.set("offset", String(state.offset));
    if (state.limit !== 50) p.set("limit", String(state.limit));
    return p;
  }

  function row(a) {
    const e = a.entities || {};
    const box = el("input", {type: "checkbox", "aria-label": T("alerts.select"), checked: selected.has(a.id)});
    box.dataset.id = String(a.id);
    box.addEventListener("change", function () { if (box.checked) selected.add(a.id); else selected.delete(a.id); updateSelected(); });
    const tr = el("tr", {dataset: {id: String(a.id)}},
      el("td", {}, box),
      el("td", {}, levelBadge(a.level)),
      el("td", {text: fmtNum(a.risk_score)}),
      el("td", {}, el("a", {href: "/alerts/" + encodeURIComponent(a.id), class: "rule-link", dataset: {title: CS.ruleTitle(a.rule_id, a.rule_title, a.title_msg, true)},
                          text: CS.ruleTitle(a.rule_id, a.rule_title, a.title_msg)})),
      el("td", {text: e.host || ""}), el("td", {text: e.user || ""}), el("td", {text: CS.label("center", e.center)}),
      el("td", {}, el("span", {class: "status st-" + a.status, text: T("status." + a.status)})),
      el("td", {text: a.assignee || ""}), el("td", {text: fmtNum(a.count)}), el("td", {text: fmtDate(a.last_seen)}));
    return tr;
  }

  async function load() {
    const p = params();
    history.replaceState(null, "", "/alerts" + (p.toString() ? "?" + p.toString() : ""));
    p.set("limit", String(state.limit));
    p.set("offset", String(state.offset));
    const t0 = performance.now();
    let page;
    try { page = await api("GET", "/api/v1/alerts?" + p.toString()); }
    catch (e) { toast(errorText(e), true); return; }
    const body = clear(document.getElementById("alerts-body"));
    shownIds = new Set();
    const frag = document.createDocumentFragment();
    for (const a of page.items) { frag.append(row(a)); shownIds.add(a.id); }
    body.append(frag);
    document.getElementById("empty").hidden = page.items.length > 0;
    const more = page.total_relation === "gte" ? "+" : "";
    document.getElementById("total").textContent = "(" + fmtNum(page.total) + more + ")";
    const from = page.items.length ? state.offset + 1 : 0;
    document.getElementById("page-info").textContent = T("pager.range").replace("{from}", fmtNum(from))
      .replace("{to}", fmtNum(state.offset + page.items.length)).replace("{total}", fmtNum(page.total) + more);
    document.getElementById("prev").disabled = state.offset === 0;
    document.getElementById("next").disabled = state.offset + page.items.length >= page.total;
    document.getElementById("alerts-table").dataset.renderMs = String(Math.round(performance.now() - t0));
    document.body.dataset.loaded = "1";
    pendingNew = 0;
    document.getElementById("new-banner").hidden = true;
    updateSelected();
  }

  // The header box mirrors the rows shown: ticked only when every one of them is selected
  // (so after a bulk action, which clears the selection, it is unticked).
  function updateSelected() {
    const boxes = document.querySelectorAll("#alerts-body input[type=checkbox]");
    const ticked = Array.from(boxes).filter(function (b) { return selected.has(Number(b.dataset.id)); }).length;
    const head = document.getElementById("select-all");
    head.checked = boxes.length > 0 && ticked === boxes.length;
    head.indeterminate = ticked > 0 && ticked < boxes.length;
    document.getElementById("selected-count").textContent = fmtNum(selected.size);
    for (const b of document.querySelectorAll("[data-bulk], #make-case")) b.disabled = selected.size === 0;
  }

  // A case from the selected alerts; its page opens at once.
  async function makeCase() {
    const ids = Array.from(selected);
    const first = document.querySelector("#alerts-body tr[data-id='" + ids[0] + "'] .rule-link");
    const title = T("cases.from_alerts").replace("{n}", fmtNum(ids.length)).replace("{what}", first ? first.dataset.title : "#" + ids[0]);
    try {
      const c = await api("POST", "/api/v1/cases", {title: title, alert_ids: ids.slice(0, 1000)});
      location.assign("/cases/" + encodeURIComponent(c.id));
    } catch (e) { toast(errorText(e), true); }
  }

  async function bulk(kind) {
    const body = {ids: Array.from(selected)};
    if (kind === "assign") {
      const who = document.getElementById("bulk-assignee").value.trim();
      body.assignee = who || null;
    } else {
      body.status = kind;
      if (kind === "closed") body.resolution = document.getElementById("bulk-resolution").value;
    }
    try {
      const r = await api("POST", "/api/v1/alerts/bulk", body);
      toast(T("alerts.bulk_done").replace("{ok}", fmtNum(r.updated)).replace("{failed}", fmtNum(r.failed)), r.failed > 0);
      selected.clear();
      await load();
    } catch (e) { toast(errorText(e), true); }
  }

  // Does a streamed alert belong in the current view? (first page, newest-first, filters match)
  function matches(a) {
    const p = params();
    if (state.offset !== 0 || (p.get("sort") && p.get("sort") !== "-last_seen" && p.get("sort") !== "-id")) return false;
    const st = p.getAll("status"), lv = p.getAll("level"), e = a.entities || {};
    if (st.length && st.indexOf(a.status) < 0) return false;
    if (lv.length && lv.indexOf(a.level) < 0) return false;
    if (p.get("center") && p.get("center") !== e.center) return false;
    if (p.get("rule_id") && p.get("rule_id") !== a.rule_id) return false;
    if (p.get("assignee") && p.get("assignee") !== a.assignee) return false;
    if (p.get("host") && p.get("host") !== e.host) return false;
    return true;
  }

  function live() {
    const badge = document.getElementById("live");
    const es = new EventSource("/api/v1/alerts/stream");
    es.addEventListener("open", function () { badge.classList.add("on"); });
    es.addEventListener("error", function () { badge.classList.remove("on"); });
    function onAlert(ev, created) {
      let a;
      try { a = JSON.parse(ev.data); } catch (_) { return; }
      const body = document.getElementById("alerts-body");
      const old = body.querySelector("tr[data-id='" + Number(a.id) + "']");
      if (old) { const fresh = row(a); fresh.classList.add("flash"); old.replaceWith(fresh); if (state.offset === 0) body.prepend(fresh); return; }
      if (!matches(a)) { if (created) { pendingNew += 1; showBanner(); } return; }
      const tr = row(a);
      tr.classList.add("flash");
      body.prepend(tr);
      shownIds.add(a.id);
      while (body.children.length > state.limit) body.removeChild(body.lastChild);
      document.getElementById("empty").hidden = true;
    }
    es.addEventListener("alert.created", function (ev) { onAlert(ev, true); });
    es.addEventListener("alert.updated", function (ev) { onAlert(ev, false); });
  }
  function showBanner() {
    const b = document.getElementById("new-banner");
    document.getElementById("show-new").textContent = T("alerts.new_arrived").replace("{n}", fmtNum(pendingNew));
    b.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    readUrl();
    const f = document.getElementById("filters");
    f.addEventListener("submit", function (ev) { ev.preventDefault(); state.offset = 0; load(); });
    f.addEventListener("change", function () { state.offset = 0; load(); });
    document.getElementById("reset").addEventListener("click", function () { history.replaceState(null, "", "/alerts"); readUrl(); load(); });
    document.getElementById("prev").addEventListener("click", function () { state.offset = Math.max(0, state.offset - state.limit); load(); });
    document.getElementById("next").addEventListener("click", function () { state.offset += state.limit; load(); });
    document.getElementById("page-size").addEventListener("change", function (ev) { state.limit = parseInt(ev.target.value, 10); state.offset = 0; load(); });
    document.getElementById("show-new").addEventListener("click", function () { state.offset = 0; load(); });
    document.getElementById("select-all").addEventListener("change", function (ev) {
      for (const box of document.querySelectorAll("#alerts-body input[type=checkbox]")) {
        box.checked = ev.target.checked;
        const id = Number(box.dataset.id);
        if (box.checked) selected.add(id); else selected.delete(id);
      }
      updateSelected();
    });
    for (const b of document.querySelectorAll("[data-bulk]")) b.addEventListener("click", function () { bulk(b.dataset.bulk); });
    document.getElementById("make-case").addEventListener("click", makeCase);
    load().then(live);
  });
})();
