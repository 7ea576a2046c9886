"""Actions on the SOC's own records and knowledge: ``create_case``, ``update_alert``, ``enrich``,
and the generic, allow-listed ``http_request``.

Cases and alerts are reached through the ``core.alerts`` store protocols handed in by
wiring; asset and threat-intel lookups are plain callables wired in the same way, so
this package imports neither storage nor detections.
"""
from __future__ import annotations

import fnmatch
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.alerts import LEVELS, STATUSES, RESOLUTIONS, check_transition
from core.messages import Message
from playbooks.actions.base import Action, ActionContext, ActionError, Param

__all__ = ["CreateCase", "UpdateAlert", "Enrich", "HttpRequest", "host_allowed"]


def _need(store: Any, what: str) -> Any:
    if store is None:
        raise ActionError(f"no {what} is wired into this process")
    return store


class CreateCase(Action):
    name = "create_case"
    description = "Open a case (optionally holding the triggering alert)."
    inputs = {"title": Param("line"), "description": Param("str", required=False, default=""),
              "severity": Param("line", required=False, default="medium", choices=tuple(LEVELS)),
              "alert_ids": Param("ints", required=False, default=[]),
              "note": Param("str", required=False, default="", doc="first note on the case")}
    outputs = {"case_id": "id of the new case", "title": ""}

    def run(self, ctx: ActionContext, *, title: str, description: str = "", severity: str = "medium",
            alert_ids: list[int] | None = None, note: str = "") -> dict[str, Any]:
        cases = _need(ctx.cases, "case store")
        actor = f"{ctx.actor} (playbook {ctx.playbook} run {ctx.run_id})"
        case = cases.create_case(title[:300], description, severity, actor, alert_ids=alert_ids or [])
        if note:
            cases.add_note(case.id, actor, note)
        return {"case_id": case.id, "title": case.title}

    def describe(self, ctx: ActionContext, *, title: str, description: str = "", severity: str = "medium",
                 alert_ids: list[int] | None = None, note: str = "") -> str:
        return Message("msg.case.would_open", severity=Message(f"level.{severity}") if severity in LEVELS else severity,
                       title=repr(title),
                       alerts=Message("msg.case.holding", ids=", ".join(map(str, alert_ids))) if alert_ids else "")


class UpdateAlert(Action):
    name = "update_alert"
    description = "Change an alert's status or assignee and/or comment on it."
    inputs = {"alert_id": Param("int"),
              "status": Param("line", required=False, choices=STATUSES),
              "resolution": Param("line", required=False, choices=RESOLUTIONS),
              "assignee": Param("line", required=False),
              "comment": Param("str", required=False)}
    outputs = {"alert_id": "", "status": "status after the change"}

    def run(self, ctx: ActionContext, *, alert_id: int, status: str | None = None, resolution: str | None = None,
            assignee: str | None = None, comment: str | None = None) -> dict[str, Any]:
        alerts = _need(ctx.alerts, "alert store")
        cur = alerts.get(alert_id)
        if status:
            check_transition(cur.status, status, resolution)
        after = cur
        if status or assignee:
            _before, after = alerts.update(alert_id, status=status, resolution=resolution, assignee=assignee)
        if comment:
            alerts.add_comment(alert_id, f"{ctx.actor} (playbook {ctx.playbook})", comment)
        return {"alert_id": alert_id, "status": after.status}

    def describe(self, ctx: ActionContext, *, alert_id: int, status: str | None = None, resolution: str | None = None,
                 assignee: str | None = None, comment: str | None = None) -> str:
        parts = [Message("msg.alert.set_status", status=status) if status else "",
                 Message("msg.alert.set_assignee", assignee=assignee) if assignee else "",
                 Message("msg.alert.add_comment") if comment else ""]
        return Message("msg.alert.would_update", id=alert_id,
                       changes=[p for p in parts if p] or Message("msg.nothing"))


class Enrich(Action):
    name = "enrich"
    description = "Look an IP or host up in the asset inventory and the threat-intel store."
    inputs = {"indicator": Param("line", doc="IP address, host name or hash")}
    outputs = {"asset": "inventory record or null", "intel": "matching intel records",
               "sources": "which lookups were available"}

    def run(self, ctx: ActionContext, *, indicator: str) -> dict[str, Any]:
        sources = []
        asset = None
        intel: list[dict[str, Any]] = []
        if ctx.asset_lookup is not None:
            sources.append("assets")
            asset = ctx.asset_lookup(indicator)
        if ctx.intel_lookup is not None:
            sources.append("intel")
            intel = list(ctx.intel_lookup(indicator))
        return {"asset": asset, "intel": intel, "sources": sources}

    def describe(self, ctx: ActionContext, *, indicator: str) -> str:
        where = {(True, True): "both", (True, False): "assets", (False, True): "intel", (False, False): "none"}[
            (ctx.asset_lookup is not None, ctx.intel_lookup is not None)]
        return Message("msg.enrich.would_look_up", indicator=repr(indicator), where=Message(f"msg.enrich.{where}"))


def host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(fnmatch.fnmatchcase(host, pat.lower()) for pat in allowed)


class HttpRequest(Action):
    name = "http_request"
    description = "Call an HTTP API on an allow-listed host (playbooks.http_allowed_hosts)."
    inputs = {"url": Param("line"),
              "method": Param("line", required=False, default="GET",
                              choices=("GET", "POST", "PUT", "PATCH", "DELETE")),
              "json": Param("any", required=False),
              "headers": Param("dict", required=False, default={}),
              "credential": Param("line", required=False, doc="name under playbooks.http_credentials"),
              "expect_status": Param("ints", required=False, default=[])}
    outputs = {"status": "HTTP status", "json": "parsed body (null unless JSON)", "text": "first 4000 characters"}
    destructive = False

    def _check(self, ctx: ActionContext, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ActionError(f"{url!r} is not an http(s) URL")
        if not host_allowed(parts.hostname, ctx.settings.http_allowed_hosts):
            raise ActionError(f"host {parts.hostname!r} is not in playbooks.http_allowed_hosts")
        return parts.hostname

    def _headers(self, ctx: ActionContext, headers: dict[str, Any] | None, credential: str | None) -> dict[str, str]:
        hdrs = {str(k): str(v) for k, v in (headers or {}).items()}
        for k, v in hdrs.items():
            if any(c in k + v for c in "\r\n\x00"):
                raise ActionError(f"header {k!r} contains a line break")
            if k.lower() in ("authorization", "proxy-authorization", "cookie", "x-api-key"):
                raise ActionError(f"header {k!r} carries a secret: name a credential from "
                                  "playbooks.http_credentials with credential: instead")
        if credential:
            if credential not in ctx.settings.http_credentials:
                raise ActionError(f"unknown credential {credential!r}; configured: "
                                  f"{', '.join(ctx.settings.http_credentials) or 'none'}")
            hdrs["Authorization"] = ctx.settings.http_credentials[credential]
        return hdrs

    def run(self, ctx: ActionContext, *, url: str, method: str = "GET", json: Any = None,
            headers: dict[str, Any] | None = None, credential: str | None = None,
            expect_status: list[int] | None = None) -> dict[str, Any]:
        self._check(ctx, url)
        hdrs = self._headers(ctx, headers, credential)
        try:
            r = httpx.request(method, url, json=json, headers=hdrs, timeout=ctx.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise ActionError(f"{method} {url} failed: {exc}") from None
        ok = r.status_code in expect_status if expect_status else r.status_code < 400
        if not ok:
            raise ActionError(f"{method} {url} answered HTTP {r.status_code}: {r.text[:200]}")
        try:
            body = r.json()
        except ValueError:
            body = None
        return {"status": r.status_code, "json": body, "text": r.text[:4000]}

    def describe(self, ctx: ActionContext, *, url: str, method: str = "GET", json: Any = None,
                 headers: dict[str, Any] | None = None, credential: str | None = None,
                 expect_status: list[int] | None = None) -> str:
        self._check(ctx, url)
        self._headers(ctx, headers, credential)
        return Message("msg.http.would_send", method=method, url=url,
                       body=Message("msg.http.json_body") if json is not None else "")
