// Case detail: summary and triage (status, severity, assignee), linked incidents and alerts,
// attachments with their YARA scan status (scanned by the server on upload), timeline,
// notes, and the evidence archive (zip + SHA-256 manifest) export.
"use strict";
(function () {
  const {T, PAGE, el, clear, fmtNum, fmtDate, api, ApiError, errorText, toast, levelBadge} = CS;
  const ID = PAGE.case_id;
  const BASE = "/api/v1/cases/" + encodeURIComponent(ID);
  let attachmentsById = {};

  function who(actor) {
    if (!actor) return "";
    if (actor === "system:scanner") return T("case.actor_scanner");
    return CS.actorName(actor);
  }

  function showCase(c) {
    document.getElementById("c-title").textContent = c.title;
    const sev = document.getElementById("c-severity");
    sev.replaceWith(Object.assign(levelBadge(c.severity), {id: "c-severity"}));
    clear(document.getElementById("c-status")).append(el("span", {class: "status cs-" + c.status, text: T("case_status." + c.status)}));
    document.getElementById("c-description").textContent = c.description || "—";
    document.getElementById("c-assignee").textContent = c.assignee || "—";
    document.getElementById("c-created-by").textContent = who(c.created_by);
    document.getElementById("c-created").textContent = fmtDate(c.created_at);
    document.getElementById("c-updated").textContent = fmtDate(c.updated_at);
    const f = document.getElementById("c-form");
    f.elements.status.value = c.status;
    f.elements.severity.value = c.severity;
    f.elements.assignee.value = c.assignee || "";
  }

  async function loadIncidents() {
    const body = clear(document.getElementById("c-incidents"));
    for (const i of await api("GET", BASE + "/incidents")) {
      const rules = CS.incidentRules(i);
      body.append(el("tr", {dataset: {id: String(i.id)}},
        el("td", {}, el("a", {href: "/incidents?attacker=" + encodeURIComponent(i.attacker), text: "#" + i.id})),
        el("td", {}, levelBadge(i.level)), el("td", {class: "num", text: fmtNum(i.risk_score)}),
        el("td", {text: i.attacker}), el("td", {text: CS.label("center", i.center)}),
        el("td", {class: "num", text: fmtNum(i.alert_count)}), el("td", {text: rules.slice(0, 3).join(", ")}),
        el("td", {}, el("span", {class: "status st-" + i.status, text: T("status." + i.status)})),
        el("td", {class: "time", text: fmtDate(i.last_seen)})));
    }
    if (!body.children.length) body.append(el("tr", {}, el("td", {colspan: 9, class: "muted", text: T("case.no_incidents")})));
  }

  async function loadAlerts() {
    const page = await api("GET", "/api/v1/alerts?case_id=" + encodeURIComponent(ID) + "&limit=500&sort=-risk_score");
    const body = clear(document.getElementById("c-alerts"));
    for (const a of page.items) {
      const e = a.entities || {};
      body.append(el("tr", {dataset: {id: String(a.id)}},
        el("td", {}, el("a", {href: "/alerts/" + encodeURIComponent(a.id), text: "#" + a.id})),
        el("td", {}, levelBadge(a.level)), el("td", {text: CS.ruleTitle(a.rule_id, a.rule_title, a.title_msg)}),
        el("td", {text: e.host || ""}), el("td", {text: e.source_ip || ""}),
        el("td", {}, el("span", {class: "status st-" + a.status, text: T("status." + a.status)})),
        el("td", {class: "time", text: fmtDate(a.last_seen)})));
    }
    if (!page.items.length) body.append(el("tr", {}, el("td", {colspan: 7, class: "muted", text: T("case.no_alerts")})));
  }

  function sizeText(n) { return n >= 1048576 ? fmtNum(Math.round(n / 104857.6) / 10) + " MB" : fmtNum(Math.max(1, Math.round(n / 1024))) + " KB"; }

  async function loadAttachments() {
    const list = await api("GET", BASE + "/attachments");
    attachmentsById = {};
    const body = clear(document.getElementById("c-attachments"));
    for (const a of list) {
      attachmentsById[a.id] = a;
      const findings = (a.scan_findings || []).map(function (f) { return f.rule || f.incomplete || f.error || ""; }).filter(Boolean);
      body.append(el("tr", {dataset: {id: String(a.id), scan: a.scan_status}},
        el("td", {}, el("a", {href: BASE + "/attachments/" + encodeURIComponent(a.id), download: a.filename, text: a.filename})),
        el("td", {text: sizeText(a.size)}),
        el("td", {}, el("code", {title: a.sha256, text: String(a.sha256).slice(0, 12) + "…"})),
        el("td", {}, el("span", {class: "status scan-" + a.scan_status, text: T("scan." + a.scan_status)}),
          findings.length ? el("span", {class: "small", text: " " + findings.join(", ")}) : null),
        el("td", {text: who(a.uploaded_by) + " · " + fmtDate(a.time)})));
    }
    if (!list.length) body.append(el("tr", {}, el("td", {colspan: 5, class: "muted", text: T("case.no_attachments")})));
  }

  function timelineText(t) {
    const d = t.data || {};
    switch (t.kind) {
      case "created": return T("case.kind.created");
      case "alert_added": return T("case.kind.alert_added").replace("{id}", String(d.alert_id));
      case "updated": return T("case.kind.updated").replace("{fields}", Object.keys(d).map(function (k) { return T("case." + k); }).join(", "));
      case "note": return T("case.kind.note");
      case "attachment": {
        const a = attachmentsById[d.attachment_id];
        return T("case.kind.attachment").replace("{file}", a ? a.filename : "#" + d.attachment_id);
      }
      case "scan": {
        const a = attachmentsById[d.attachment_id];
        const m = /: ([a-z_]+)$/.exec(t.summary || "");
        return T("case.kind.scan").replace("{file}", a ? a.filename : "#" + d.attachment_id)
          .replace("{status}", m ? T("scan." + m[1]) : "");
      }
      default: return t.summary;
    }
  }

  async function loadTimeline() {
    const ol = clear(document.getElementById("c-timeline"));
    for (const t of await api("GET", BASE + "/timeline")) {
      ol.append(el("li", {dataset: {kind: t.kind}}, el("span", {class: "time", text: fmtDate(t.time)}), " ",
        el("b", {text: who(t.actor)}), " · ", timelineText(t),
        t.kind === "note" ? el("span", {class: "msg muted", text: t.summary}) : null));
    }
  }

  async function loadNotes() {
    const ul = clear(document.getElementById("c-notes"));
    const notes = await api("GET", BASE + "/notes");
    for (const n of notes) ul.append(el("li", {}, el("span", {class: "time", text: fmtDate(n.time)}), " ", el("b", {text: who(n.author)}), el("p", {text: n.text})));
    if (!notes.length) ul.append(el("li", {class: "muted", text: T("case.no_notes")}));
  }

  async function loadAll() {
    try {
      showCase(await api("GET", BASE));
      await loadAttachments();  // before the timeline, which names their files
      await Promise.all([loadIncidents(), loadAlerts(), loadTimeline(), loadNotes()]);
    } catch (e) {
      const p = document.getElementById("c-error");
      p.textContent = errorText(e);
      p.hidden = false;
    }
    document.body.dataset.loaded = "1";
  }

  async function save(ev) {
    ev.preventDefault();
    const f = ev.target;
    const body = {status: f.elements.status.value, severity: f.elements.severity.value};
    const who = f.elements.assignee.value.trim();
    if (who) body.assignee = who;
    try { showCase(await api("PATCH", BASE, body)); toast(T("alert.saved")); await loadTimeline(); }
    catch (e) { toast(errorText(e), true); }
  }

  async function upload(ev) {
    ev.preventDefault();
    const input = document.getElementById("c-file");
    if (!input.files.length) return;
    const fd = new FormData();
    fd.append("file", input.files[0]);
    const btn = ev.target.querySelector("button");
    btn.disabled = true;
    try {
      const r = await fetch(BASE + "/attachments", {method: "POST", body: fd, credentials: "same-origin",
        headers: {"Accept": "application/json", "X-CSRF-Token": PAGE.csrf || ""}});
      const data = await r.json();
      if (!r.ok) throw new ApiError(r.status, data.detail);
      toast(T("case.uploaded").replace("{file}", data.filename).replace("{status}", T("scan." + data.scan_status)), data.scan_status !== "clean");
      input.value = "";
      await loadAttachments();
      await loadTimeline();
    } catch (e) { toast(errorText(e), true); }
    finally { btn.disabled = false; }
  }

  async function exportEvidence() {
    const btn = document.getElementById("c-export");
    btn.disabled = true;
    const out = clear(document.getElementById("c-evidence-result"));
    try {
      const r = await api("POST", "/api/v1/reports/evidence", {case_id: ID});
      out.append(T("case.evidence_ready").replace("{name}", r.name), " ",
        el("a", {href: r.download, download: r.name, class: "download", text: T("reports.download_one")}), " ",
        el("a", {href: r.download + "/manifest", download: r.name + ".manifest.json", text: T("reports.manifest")}));
    } catch (e) { toast(errorText(e), true); }
    finally { btn.disabled = false; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("c-form").addEventListener("submit", save);
    document.getElementById("c-assign-me").addEventListener("click", function () {
      document.getElementById("c-form").elements.assignee.value = PAGE.user || "";
    });
    document.getElementById("c-upload").addEventListener("submit", upload);
    document.getElementById("c-export").addEventListener("click", exportEvidence);
    document.getElementById("c-note-form").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const t = document.getElementById("c-note");
      try { await api("POST", BASE + "/notes", {text: t.value}); t.value = ""; await Promise.all([loadNotes(), loadTimeline()]); }
      catch (e) { toast(errorText(e), true); }
    });
    loadAll();
  });
})();
