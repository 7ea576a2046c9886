// Rules: enabled/disabled, alert hits, and an ATT&CK coverage matrix from the rules' tags.
"use strict";
(function () {
  const {T, PAGE, el, clear, fmtNum, api, can, errorText, toast, levelBadge, attackLinks} = CS;
  // A rule that declares a Vietnamese title (our detectors) shows it on the Vietnamese console.
  function titleOf(r) { return PAGE.lang === "vi" && r.title_vi ? r.title_vi : CS.ruleTitle(r.id, r.title); }
  const TACTICS = ["reconnaissance", "resource_development", "initial_access", "execution", "persistence",
    "privilege_escalation", "defense_evasion", "credential_access", "discovery", "lateral_movement", "collection",
    "command_and_control", "exfiltration", "impact"];
  let rules = [], hits = {};

  function tacticOf(tag) { const t = tag.slice(7).toLowerCase().replace(/-/g, "_"); return TACTICS.indexOf(t) >= 0 ? t : null; }

  function matrix() {
    const cells = {};
    for (const r of rules) {
      const tactics = r.tags.filter(function (t) { return /^attack\./i.test(t); }).map(tacticOf).filter(Boolean);
      const techs = r.tags.filter(function (t) { return /^attack\.t\d{4}/i.test(t); }).map(function (t) { return t.slice(7).toUpperCase(); });
      for (const ta of tactics.length ? tactics : []) {
        cells[ta] = cells[ta] || {};
        for (const te of techs.length ? techs : ["—"]) {
          cells[ta][te] = cells[ta][te] || {on: 0, off: 0};
          cells[ta][te][r.enabled ? "on" : "off"] += 1;
        }
      }
    }
    const box = clear(document.getElementById("matrix"));
    for (const ta of TACTICS) {
      const col = el("div", {class: "tactic-col" + (cells[ta] ? " covered" : "")}, el("h3", {text: T("tactic." + ta)}));
      for (const [te, c] of Object.entries(cells[ta] || {}).sort()) {
        col.append(el("div", {class: "tech" + (c.on ? " on" : " off"), title: T("rules.matrix_cell").replace("{on}", c.on).replace("{off}", c.off), text: te + " · " + (c.on + c.off)}));
      }
      box.append(col);
    }
  }

  function table() {
    const f = document.getElementById("rules-filter").value.trim().toLowerCase();
    const tb = clear(document.getElementById("rules-body"));
    for (const r of rules) {
      if (f && (r.id + " " + r.title + " " + (r.title_vi || "") + " " + r.tags.join(" ")).toLowerCase().indexOf(f) < 0) continue;
      const box = el("input", {type: "checkbox", checked: r.enabled, disabled: !can("rules:write"), "aria-label": T("rule.enabled")});
      box.addEventListener("change", async function () {
        try {
          const after = await api("POST", "/api/v1/rules/" + encodeURIComponent(r.id) + (box.checked ? "/enable" : "/disable"));
          r.enabled = after.enabled; matrix();
        } catch (e) { box.checked = r.enabled; toast(errorText(e), true); }
      });
      const n = hits[r.id] || 0;
      tb.append(el("tr", {}, el("td", {}, el("code", {text: r.id})), el("td", {text: titleOf(r)}), el("td", {}, levelBadge(r.level)),
        el("td", {text: CS.label("engine", r.engine)}), el("td", {}, attackLinks(r.tags)),
        el("td", {}, n ? el("a", {href: "/alerts?rule_id=" + encodeURIComponent(r.id), text: fmtNum(n)}) : "0"), el("td", {}, box)));
    }
  }

  document.addEventListener("DOMContentLoaded", async function () {
    const q = new URLSearchParams(location.search).get("q");
    if (q) document.getElementById("rules-filter").value = q;
    document.getElementById("rules-filter").addEventListener("input", table);
    try {
      const page = await api("GET", "/api/v1/rules?limit=5000");
      rules = page.items;
      document.getElementById("rules-total").textContent = "(" + fmtNum(page.total) + ")";
    } catch (e) {
      const p = document.getElementById("rules-error");
      p.textContent = e.status === 503 ? T("rules.unavailable") : errorText(e);
      p.hidden = false;
      document.body.dataset.loaded = "1";
      return;
    }
    if (rules.length && can("alerts:read")) {
      try {
        const p = new URLSearchParams();
        for (const r of rules) p.append("ids", r.id);
        hits = await api("GET", "/api/v1/console/rule-hits?" + p.toString());
      } catch (e) { toast(errorText(e), true); }
    }
    matrix();
    table();
    document.body.dataset.loaded = "1";
  });
})();
