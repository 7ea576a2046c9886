// Cases list: status filter (kept in the URL), paging, and a form to open an empty case.
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, errorText, toast, levelBadge} = CS;
  const LIMIT = 50;
  let offset = 0;

  async function load() {
    const f = document.getElementById("filters");
    const status = f.elements.status.value;
    const p = new URLSearchParams();
    if (status) p.set("status", status);
    history.replaceState(null, "", "/cases" + (p.toString() ? "?" + p.toString() : ""));
    p.set("limit", String(LIMIT));
    p.set("offset", String(offset));
    let page;
    try { page = await api("GET", "/api/v1/cases?" + p.toString()); }
    catch (e) { toast(errorText(e), true); document.body.dataset.loaded = "1"; return; }
    const body = clear(document.getElementById("cases-body"));
    for (const c of page.items) {
      body.append(el("tr", {dataset: {id: String(c.id)}}, el("td", {text: "#" + c.id}),
        el("td", {}, el("a", {href: "/cases/" + encodeURIComponent(c.id), text: c.title})),
        el("td", {}, levelBadge(c.severity)),
        el("td", {}, el("span", {class: "status cs-" + c.status, text: T("case_status." + c.status)})),
        el("td", {text: c.assignee || ""}), el("td", {class: "num", text: fmtNum(c.alert_ids.length)}),
        el("td", {text: c.created_by}), el("td", {class: "time", text: fmtDate(c.updated_at)})));
    }
    document.getElementById("empty").hidden = page.items.length > 0;
    document.getElementById("total").textContent = "(" + fmtNum(page.total) + ")";
    document.getElementById("page-info").textContent = T("pager.range").replace("{from}", fmtNum(page.items.length ? offset + 1 : 0))
      .replace("{to}", fmtNum(offset + page.items.length)).replace("{total}", fmtNum(page.total));
    document.getElementById("prev").disabled = offset === 0;
    document.getElementById("next").disabled = offset + page.items.length >= page.total;
    document.body.dataset.loaded = "1";
  }

  document.addEventListener("DOMContentLoaded", function () {
    const f = document.getElementById("filters");
    f.elements.status.value = new URLSearchParams(location.search).get("status") || "";
    f.addEventListener("change", function () { offset = 0; load(); });
    f.addEventListener("submit", function (ev) { ev.preventDefault(); });
    document.getElementById("prev").addEventListener("click", function () { offset = Math.max(0, offset - LIMIT); load(); });
    document.getElementById("next").addEventListener("click", function () { offset += LIMIT; load(); });
    document.getElementById("new-case").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const n = ev.target;
      try {
        const c = await api("POST", "/api/v1/cases", {title: n.elements.title.value.trim(), severity: n.elements.severity.value});
        location.assign("/cases/" + encodeURIComponent(c.id));
      } catch (e) { toast(errorText(e), true); }
    });
    load();
  });
})();
