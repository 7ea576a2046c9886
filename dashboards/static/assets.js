// Assets at risk, folded from open alerts (no asset inventory API exists yet).
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, can, errorText, toast} = CS;
  // The inventory (GET /api/v1/assets) when this server has it; a notice otherwise.
  async function inventory() {
    if (!can("assets:read")) return;
    const st = document.getElementById("inv-status").value;
    let items;
    try { items = await api("GET", "/api/v1/assets?limit=10000" + (st ? "&status=" + encodeURIComponent(st) : "")); }
    catch (e) {
      if (e.status === 404 || e.status === 503) { document.getElementById("inv-unavailable").hidden = false; document.getElementById("inv-box").hidden = true; return; }
      toast(errorText(e), true); return;
    }
    document.getElementById("inv-total").textContent = "(" + fmtNum(items.length) + ")";
    const byStatus = {};
    for (const it of items) byStatus[it.status] = (byStatus[it.status] || 0) + 1;
    Charts.hbar(document.getElementById("chart-inv"), Object.keys(byStatus).sort().map(function (k) {
      return {label: T("asset_status." + k), value: byStatus[k], cls: "as-" + k};
    }));
    const tb = clear(document.getElementById("inv-body"));
    for (const it of items.slice(0, 1000)) {
      const a = it.asset || {};
      const ips = (a.ips || []).join(", "), hosts = (a.hostnames || []).join(", ");
      tb.append(el("tr", {}, el("td", {}, el("strong", {text: a.name || a.id}), el("div", {class: "muted small", text: a.id})),
        el("td", {text: CS.label("asset_type", a.type)}), el("td", {text: CS.label("center", a.center)}),
        el("td", {text: a.criticality_level !== undefined ? a.criticality_level + " (" + (a.criticality || "") + ")" : (a.criticality || "")}),
        el("td", {}, el("span", {class: "status as-" + it.status, text: T("asset_status." + it.status)})),
        el("td", {text: ips}), el("td", {text: hosts}),
        el("td", {}, can("events:read") && a.id ? el("a", {href: CS.pivotHref("citysoc.asset.id", a.id), text: T("asset.events")}) : null)));
    }
    if (!items.length) tb.append(el("tr", {}, el("td", {colspan: 8, class: "muted", text: T("chart.no_data")})));
  }

  document.addEventListener("DOMContentLoaded", async function () {
    document.getElementById("inv-status").addEventListener("change", inventory);
    await inventory();
    let o;
    try { o = await api("GET", "/api/v1/console/overview?hours=24"); } catch (e) { toast(errorText(e), true); return; }
    Charts.hbar(document.getElementById("chart-assets"), o.top_assets.map(function (a) {
      return {label: a.asset, value: a.risk, href: "/alerts?status=new&status=acknowledged&status=in_progress" +
        (a.host ? "&host=" + encodeURIComponent(a.host) : "")};
    }), {labelWidth: 200});
    const tb = clear(document.getElementById("assets-body"));
    for (const a of o.top_assets) {
      const field = a.asset_id ? "citysoc.asset.id" : a.host ? "host.name" : "source.ip";
      tb.append(el("tr", {}, el("td", {text: a.asset_id || ""}), el("td", {text: a.host || ""}), el("td", {text: a.ip || ""}),
        el("td", {text: CS.label("center", a.center)}), el("td", {text: a.criticality === null ? "" : a.criticality}),
        el("td", {text: fmtNum(a.alerts)}), el("td", {text: fmtNum(a.risk)}), el("td", {text: fmtDate(a.last_seen)}),
        el("td", {}, can("events:read") ? el("a", {href: CS.pivotHref(field, a.asset), text: T("asset.events")}) : null)));
    }
    if (!o.top_assets.length) tb.append(el("tr", {}, el("td", {colspan: 9, class: "muted", text: T("chart.no_data")})));
    document.getElementById("scan-note").textContent = T("overview.scan_note").replace("{n}", fmtNum(o.scanned)).replace("{limit}", fmtNum(o.scan_limit));
    document.body.dataset.loaded = "1";
  });
})();
