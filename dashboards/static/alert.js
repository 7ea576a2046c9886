// Alert detail: rule and ATT&CK, entity pivots into search, matching events, a timeline
// of related events, comments, triage, and playbook runs (dry-run preview, approvals).
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, can, errorText, toast, levelBadge, attackLinks, pivotHref, PAGE} = CS;
  const ID = PAGE.alert_id;
  const ENTITY_FIELDS = {host: "host.name", user: "user.name", source_ip: "source.ip", destination_ip: "destination.ip",
                         asset_id: "citysoc.asset.id", center: "citysoc.center"};
  let alert = null;

  function set(id, value) { document.getElementById(id).textContent = value === null || value === undefined ? "" : String(value); }

  function eventSummary(ev) {
    const msg = ev.message || (ev.event && (ev.event.action || ev.event.original)) || "";
    return String(msg).slice(0, 300);
  }
  function docView(ev) {
    return el("details", {class: "doc"}, el("summary", {}, el("span", {class: "time", text: fmtDate(ev["@timestamp"])}), " ",
      el("span", {text: eventSummary(ev)})), el("pre", {text: JSON.stringify(ev, null, 2)}));
  }

  function windowOf(a) {
    const f = new Date(a.first_seen).getTime() - 3600e3, l = new Date(a.last_seen).getTime() + 3600e3;
    return {from: new Date(f).toISOString(), to: new Date(l).toISOString()};
  }

  async function loadAlert() {
    try { alert = await api("GET", "/api/v1/alerts/" + encodeURIComponent(ID)); }
    catch (e) { const p = document.getElementById("a-error"); p.textContent = errorText(e); p.hidden = false; return; }
    const a = alert;
    const lv = document.getElementById("a-level");
    clear(lv).append(levelBadge(a.level));
    set("a-title", CS.ruleTitle(a.rule_id, a.rule_title, a.title_msg));
    clear(document.getElementById("a-rule")).append(
      can("rules:read") ? el("a", {href: "/rules?q=" + encodeURIComponent(a.rule_id), text: a.rule_id}) : a.rule_id);
    set("a-engine", CS.label("engine", a.engine));
    clear(document.getElementById("a-attack")).append(attackLinks(a.tags));
    set("a-description", a.description);
    if (PAGE.lang === "vi" && (PAGE.rule_titles_vi || {})[a.rule_id] && can("rules:read")) {
      // our rules carry a Vietnamese description: show it instead of the English one stored with the alert
      api("GET", "/api/v1/rules/" + encodeURIComponent(a.rule_id))
        .then(function (r) { if (r.description_vi) set("a-description", r.description_vi); })
        .catch(function () { /* the English one stays */ });
    }
    set("a-risk", a.risk_score);
    clear(document.getElementById("a-status")).append(el("span", {class: "status st-" + a.status, text: T("status." + a.status)}));
    set("a-resolution", a.resolution ? T("resolution." + a.resolution) : "");
    set("a-assignee", a.assignee || "");
    set("a-count", fmtNum(a.count));
    set("a-first", fmtDate(a.first_seen));
    set("a-last", fmtDate(a.last_seen));
    const ents = clear(document.getElementById("a-entities"));
    const w = windowOf(a);
    for (const [name, field] of Object.entries(ENTITY_FIELDS)) {
      const v = a.entities[name];
      if (v === null || v === undefined || v === "") continue;
      ents.append(el("dt", {text: T("entity." + name)}),
        el("dd", {}, can("events:read") ? el("a", {href: pivotHref(field, v), class: "pivot", dataset: {field: field},
                                                   text: name === "center" ? CS.label("center", v) : v})
                                        : (name === "center" ? CS.label("center", v) : String(v))));
    }
    if (a.entities.criticality !== null && a.entities.criticality !== undefined)
      ents.append(el("dt", {text: T("asset.criticality")}), el("dd", {text: a.entities.criticality}));
    document.getElementById("a-events-link").setAttribute("href",
      "/search?q=" + encodeURIComponent(a.events_query) + "&from=" + encodeURIComponent(w.from) + "&to=" + encodeURIComponent(w.to));
    const evs = clear(document.getElementById("a-events"));
    for (const ev of a.events || []) evs.append(docView(ev));
    if (!(a.events || []).length) evs.append(el("p", {class: "muted", text: T("alert.no_events")}));
    document.body.dataset.loaded = "1";
  }

  async function loadTimeline() {
    if (!alert || !can("events:read")) return;
    const w = windowOf(alert);
    const span = new Date(w.to) - new Date(w.from);
    const interval = span <= 4 * 3600e3 ? "5m" : span <= 48 * 3600e3 ? "1h" : "1d";
    // Related = any event naming one of the alert's entities (the alert's own query ANDs them).
    const parts = [];
    for (const [name, field] of Object.entries(ENTITY_FIELDS)) {
      const v = alert.entities[name];
      if (v !== null && v !== undefined && v !== "" && name !== "center") parts.push(field + ":" + CS.quoteValue(v));
    }
    const related = parts.length ? parts.join(" OR ") : alert.events_query;
    const qs = "q=" + encodeURIComponent(related) + "&from=" + encodeURIComponent(w.from) + "&to=" + encodeURIComponent(w.to);
    try {
      const [hist, res] = await Promise.all([
        api("GET", "/api/v1/events/histogram?" + qs + "&interval=" + interval),
        api("GET", "/api/v1/events/search?" + qs + "&limit=100&sort=asc")]);
      Charts.columns(document.getElementById("timeline-chart"),
                     Charts.fill(hist, new Date(w.from).getTime(), new Date(w.to).getTime(), Charts.stepOf(interval)),
                     [{name: "n", cls: "hist", label: T("search.events")}], {height: 110});
      const ol = clear(document.getElementById("timeline"));
      for (const ev of res.hits) ol.append(el("li", {}, docView(ev)));
      if (!res.hits.length) ol.append(el("li", {class: "muted", text: T("alert.no_events")}));
    } catch (e) { toast(errorText(e), true); }
  }

  async function loadComments() {
    const ul = clear(document.getElementById("comments"));
    try {
      const cs = await api("GET", "/api/v1/alerts/" + encodeURIComponent(ID) + "/comments");
      for (const c of cs) ul.append(el("li", {}, el("span", {class: "muted small", text: c.author + " · " + fmtDate(c.time)}), el("p", {text: c.text})));
      if (!cs.length) ul.append(el("li", {class: "muted", text: T("alert.no_comments")}));
    } catch (e) { toast(errorText(e), true); }
  }

  // Status, assignee and comment changes as the audit log recorded them (auditors, admins).
  async function loadHistory() {
    if (!can("audit:read")) return;
    const ol = clear(document.getElementById("history"));
    try {
      const page = await api("GET", "/api/v1/audit?target=" + encodeURIComponent("alert:" + ID) + "&limit=200");
      for (const e of page.items.slice().reverse()) {
        const parts = [];
        for (const k of ["status", "resolution", "assignee"]) {
          const b = e.before ? e.before[k] : undefined, a = e.after ? e.after[k] : undefined;
          if (e.after && b !== a) parts.push(T("alert." + k) + ": " + show(k, b) + " → " + show(k, a));
        }
        ol.append(el("li", {}, el("span", {class: "time", text: fmtDate(e.time)}), " ", el("strong", {text: CS.actorName(e.actor)}), " ",
          el("span", {class: "audit-action", title: e.action, text: CS.label("audit", e.action)}), parts.length ? " " + parts.join("; ") : null));
      }
      if (!page.items.length) ol.append(el("li", {class: "muted", text: T("alert.no_history")}));
    } catch (e) { toast(errorText(e), true); }
  }
  function show(k, v) {
    if (v === null || v === undefined || v === "") return "—";
    return k === "status" ? T("status." + v) : k === "resolution" ? T("resolution." + v) : String(v);
  }

  async function patch(body) {
    try {
      await api("PATCH", "/api/v1/alerts/" + encodeURIComponent(ID), body);
      toast(T("alert.saved"));
      await loadAlert();
      await loadHistory();
    } catch (e) { toast(errorText(e), true); }
  }

  // Playbooks ------------------------------------------------------------------------
  function stepList(run) {
    const ol = el("ol", {class: "steps"});
    for (const s of run.steps) {
      ol.append(el("li", {class: "step st-" + s.status},
        el("strong", {text: s.name}), " (", el("code", {text: s.action}), ") ",
        el("span", {class: "status", text: T("step." + s.status)}),
        s.destructive ? el("span", {class: "tag warn", text: T("playbook.destructive")}) : null,
        s.would ? el("div", {class: "would", text: CS.msg(s.would_msg, s.would)}) : null,
        s.error ? el("div", {class: "error", text: CS.msg(s.error_msg, s.error)}) : null));
    }
    return ol;
  }
  function showRun(run) {
    shownRun = run;
    const box = clear(document.getElementById("pb-result"));
    box.append(el("p", {}, el("strong", {text: (run.dry_run ? T("playbook.preview") : T("playbook.run_no")) + " #" + run.id + ": "}),
      el("span", {class: "status run-" + run.status, id: "pb-status", text: T("run." + run.status)}),
      run.reason ? el("span", {class: "muted", text: " " + CS.msg(run.reason_msg, run.reason)}) : null));
    box.append(stepList(run));
    if (run.status === "awaiting_approval" && can("playbooks:approve")) {
      const approve = el("button", {type: "button", class: "primary", id: "pb-approve", text: T("playbook.approve")});
      const reject = el("button", {type: "button", id: "pb-reject", text: T("playbook.reject")});
      approve.addEventListener("click", function () { decide(run.id, "approve"); });
      reject.addEventListener("click", function () { decide(run.id, "reject"); });
      box.append(el("p", {}, T("playbook.waiting").replace("{step}", run.current_step || ""), " ", approve, " ", reject));
    }
  }
  let shownRun = null;
  async function decide(runId, what) {
    // at once: the buttons go and the step says it is being decided, before the answer
    for (const b of document.querySelectorAll("#pb-approve, #pb-reject")) b.disabled = true;
    const st = document.getElementById("pb-status");
    if (st) { st.textContent = T(what === "approve" ? "playbook.approving" : "playbook.rejecting"); st.className = "status run-running"; }
    try { showRun(await api("POST", "/api/v1/playbook-runs/" + encodeURIComponent(runId) + "/" + what, {comment: "", wait: true})); }
    catch (e) {
      toast(CS.decisionError(e), true);
      try { showRun(await api("GET", "/api/v1/playbook-runs/" + encodeURIComponent(runId))); } catch (_) { /* shown below */ }
    }
  }
  // Another person's decision (or the run ending) arrives over the alert stream.
  function liveRuns() {
    const es = new EventSource("/api/v1/alerts/stream");
    const FINAL = ["succeeded", "completed_with_failures", "failed", "rejected", "cancelled", "refused"];
    async function onRun(ev) {
      let r;
      try { r = JSON.parse(ev.data); } catch (_) { return; }
      if (r.alert_id !== ID || (shownRun && r.id < shownRun.id)) return;
      // a run passing through queued/running says nothing to act on; and a state already shown
      // (the page's own start or decision) is not re-rendered under the user's click
      if (r.status === "queued" || r.status === "running") return;
      if (shownRun && r.id === shownRun.id && (r.status === shownRun.status || FINAL.indexOf(shownRun.status) >= 0)) return;
      let fresh;
      try { fresh = await api("GET", "/api/v1/playbook-runs/" + encodeURIComponent(r.id)); } catch (_) { return; }
      // answers can arrive out of order: never step back behind what this event said
      if (fresh.status !== r.status && FINAL.indexOf(fresh.status) < 0) return;
      if (shownRun && shownRun.id === fresh.id && FINAL.indexOf(shownRun.status) >= 0) return;
      showRun(fresh);
    }
    es.addEventListener("run.updated", onRun);
    es.addEventListener("run.awaiting_approval", onRun);
  }
  async function runPlaybook(dry) {
    const name = document.getElementById("pb-select").value;
    if (!name) return;
    try {
      const run = await api("POST", "/api/v1/playbooks/" + encodeURIComponent(name) + "/run", {alert_id: ID, dry_run: dry, wait: true});
      showRun(run);
      document.getElementById("pb-run").disabled = !dry;
    } catch (e) { toast(errorText(e), true); }
  }
  async function loadPlaybooks() {
    if (!can("playbooks:read")) return;
    let pbs;
    try { pbs = await api("GET", "/api/v1/playbooks?alert_id=" + encodeURIComponent(ID)); }
    catch (e) {
      document.getElementById("pb-unavailable").hidden = false;
      document.getElementById("pb-controls").hidden = true;
      return;
    }
    // Only someone who may run playbooks gets the picker (data-needs); the playbooks whose triggers match
    // this alert come first and the first of them is chosen; with none, nothing is.
    const sel = clear(document.getElementById("pb-select"));
    const hits = pbs.filter(function (p) { return p.matches; }), rest = pbs.filter(function (p) { return !p.matches; });
    if (!hits.length) sel.append(el("option", {value: "", text: T("playbook.choose"), selected: true}));
    for (const [label, group] of [[T("playbook.matching"), hits], [T("playbook.others"), rest]]) {
      if (!group.length) continue;
      const og = document.createElement("optgroup");
      og.setAttribute("label", label);
      for (const p of group) og.append(el("option", {value: p.name, text: p.name + " — " + (CS.PAGE.lang === "vi" && p.title_vi ? p.title_vi : p.title)}));
      sel.append(og);
    }
    if (hits.length) sel.value = hits[0].name;
    sel.addEventListener("change", function () { document.getElementById("pb-run").disabled = true; });
    try {
      const runs = await api("GET", "/api/v1/playbook-runs?alert_id=" + encodeURIComponent(ID) + "&limit=1");
      if (runs.items.length) showRun(runs.items[0]);
    } catch (e) { /* runs listing is optional here */ }
  }

  document.addEventListener("DOMContentLoaded", async function () {
    for (const b of document.querySelectorAll("[data-status]")) b.addEventListener("click", function () {
      const body = {status: b.dataset.status};
      if (body.status === "closed") body.resolution = document.getElementById("resolution").value;
      patch(body);
    });
    document.getElementById("assign").addEventListener("click", function () {
      const v = document.getElementById("assignee").value.trim(); patch({assignee: v || null});
    });
    document.getElementById("assign-me").addEventListener("click", function () { patch({assignee: PAGE.user}); });
    document.getElementById("comment-form").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const ta = document.getElementById("comment-text");
      try { await api("POST", "/api/v1/alerts/" + encodeURIComponent(ID) + "/comments", {text: ta.value}); ta.value = ""; await loadComments(); }
      catch (e) { toast(errorText(e), true); }
    });
    document.getElementById("pb-dry").addEventListener("click", function () { runPlaybook(true); });
    document.getElementById("pb-run").addEventListener("click", function () { runPlaybook(false); });
    await loadAlert();
    await Promise.all([loadTimeline(), loadComments(), loadPlaybooks(), loadHistory()]);
    if (can("playbooks:read")) liveRuns();
  });
})();
