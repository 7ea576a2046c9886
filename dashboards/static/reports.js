// Reports: generate a period report (PDF/HTML/CSV/JSON) through the reports API, list and
// download stored ones; plus the alert export with its filters as a link.
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, errorText, toast} = CS;

  function isoDay(d) { return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); }

  function sizeText(n) { return n >= 1048576 ? fmtNum(Math.round(n / 104857.6) / 10) + " MB" : fmtNum(Math.max(1, Math.round(n / 1024))) + " KB"; }

  async function list() {
    let page;
    try { page = await api("GET", "/api/v1/reports"); }
    catch (e) {
      if (e.status === 404 || e.status === 503) {
        document.getElementById("reports-unavailable").hidden = false;
        document.getElementById("generate-form").hidden = true;
        return;
      }
      toast(errorText(e), true); return;
    }
    const tb = clear(document.getElementById("reports-body"));
    for (const r of page.items) {
      const href = "/api/v1/reports/" + encodeURIComponent(r.name);
      tb.append(el("tr", {dataset: {name: r.name}}, el("td", {}, el("code", {text: r.name})),
        el("td", {text: fmtDate(r.start) + " – " + fmtDate(r.end)}), el("td", {text: String(r.fmt).toUpperCase()}),
        el("td", {text: T("lang." + r.lang)}), el("td", {text: sizeText(r.size)}),
        el("td", {text: fmtDate(r.generated_at) + " · " + r.generated_by}),
        el("td", {}, el("code", {title: r.sha256, text: String(r.sha256).slice(0, 12) + "…"})),
        el("td", {}, el("a", {href: href, class: "download", download: r.name, text: T("reports.download_one")}), " ",
          el("a", {href: href + "/manifest", download: r.name + ".manifest.json", text: T("reports.manifest")}))));
    }
    if (!page.items.length) tb.append(el("tr", {}, el("td", {colspan: 8, class: "muted", text: T("reports.none")})));
  }

  async function generate(ev) {
    ev.preventDefault();
    const f = ev.target;
    const btn = document.getElementById("generate");
    btn.disabled = true;
    try {
      const r = await api("POST", "/api/v1/reports", {start: f.elements.start.value, end: f.elements.end.value,
        format: f.elements.format.value, lang: f.elements.lang.value, tz: f.elements.tz.value});
      toast(T("reports.generated_ok").replace("{name}", r.name));
      await list();
    } catch (e) { toast(errorText(e), true); }
    finally { btn.disabled = false; }
  }

  document.addEventListener("DOMContentLoaded", async function () {
    const g = document.getElementById("generate-form");
    const today = new Date(), weekAgo = new Date(Date.now() - 6 * 86400e3);
    g.elements.start.value = isoDay(weekAgo);
    g.elements.end.value = isoDay(today);
    g.addEventListener("submit", generate);
    const f = document.getElementById("report-form");
    const a = document.getElementById("report-download");
    function update() {
      const p = new URLSearchParams();
      for (const name of ["format", "status", "level", "from"]) { const v = f.elements[name].value; if (v) p.set(name, v); }
      a.setAttribute("href", "/api/v1/alerts/export?" + p.toString());
    }
    f.addEventListener("change", update);
    update();
    await list();
    document.body.dataset.loaded = "1";
  });
})();
