"""The console's pages: one route per bookmarkable URL, each a server-rendered shell
whose data the page's own script fetches from ``/api/v1`` with the session cookie.

A page needs a signed-in caller (else a redirect to ``/login?next=<path>``) and the
permission its menu entry names (else 403). ``GET /`` serves browsers the overview and
everything else (log shippers probing for Elasticsearch) the cluster info, decided by
the ``Accept`` header in :func:`root`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.routers.ingest import es_info
from api.security import AUTHENTICATED, authenticate, require, safe_next
from core.auth import Principal, permissions_of
from dashboards.i18n import LANG_COOKIE, LANGUAGES, Translator, pick_language

__all__ = ["router", "NAV", "NavItem", "templates"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.autoescape = True  # every template, whatever its extension


@dataclass(frozen=True)
class NavItem:
    page: str
    path: str
    label: str
    permission: str


NAV: tuple[NavItem, ...] = (
    NavItem("incidents", "/incidents", "nav.incidents", "alerts:read"),
    NavItem("overview", "/", "nav.overview", "alerts:read"),
    NavItem("alerts", "/alerts", "nav.alerts", "alerts:read"),
    NavItem("cases", "/cases", "nav.cases", "cases:read"),
    NavItem("search", "/search", "nav.search", "events:read"),
    NavItem("assets", "/assets", "nav.assets", "alerts:read"),
    NavItem("playbooks", "/playbooks", "nav.playbooks", "playbooks:read"),
    NavItem("rules", "/rules", "nav.rules", "rules:read"),
    NavItem("reports", "/reports", "nav.reports", "export"),
)
_BY_PAGE = {n.page: n for n in NAV}


_VI_TITLES: dict[int, dict[str, str]] = {}


def _vi_titles(request: Request) -> dict[str, str]:
    """Rule id -> Vietnamese title for every loaded rule that has one (read once per catalog):
    the page's script shows these for alerts and rules, and labels the rest as English."""
    rules = request.app.state.citysoc.services.rules
    if rules is None:
        return {}
    key = id(rules)
    if key not in _VI_TITLES:
        _VI_TITLES.clear()
        _VI_TITLES[key] = {r.id: r.title_vi for r in rules.list_rules() if r.title_vi}
    return _VI_TITLES[key]


def _site_zone(request: Request) -> str:
    return request.app.state.citysoc.settings.site.timezone


def _default_lang(request: Request) -> str:
    return request.app.state.citysoc.settings.console.default_language


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _caller(request: Request) -> Principal | None:
    try:
        return await authenticate(request, AUTHENTICATED)
    except HTTPException as exc:
        if exc.status_code == 401:
            return None
        raise


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _render(request: Request, template: str, page: str, me: Principal | None, status: int = 200,
            **extra: Any) -> HTMLResponse:
    lang = pick_language(request, _default_lang(request))
    t = Translator(lang)
    perms = sorted(permissions_of(me.role)) if me else []
    nav = [n for n in NAV if n.permission in perms]
    page_data = {"page": page, "lang": lang, "user": me.name if me else None, "role": me.role if me else None,
                 "permissions": perms, "csrf": me.csrf if me else None, "site_zone": _site_zone(request),
                 "rule_titles_vi": _vi_titles(request) if (me and lang == "vi") else {},
                 **extra.pop("page_data", {})}
    ctx = {"request": request, "t": t, "lang": lang, "languages": LANGUAGES, "me": me, "nav": nav, "page": page,
           "messages": t.messages, "page_data": page_data, **extra}
    resp = templates.TemplateResponse(request, template, ctx, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def _page(request: Request, page: str, template: str, **extra: Any) -> Response:
    me = await _caller(request)
    if me is None:
        return _login_redirect(request)
    need = _BY_PAGE[page].permission if page in _BY_PAGE else "alerts:read"
    if not me.can(need):
        return _render(request, "forbidden.html", page, me, status=403, permission=need)
    return _render(request, template, page, me, **extra)


@router.get("/")
async def root(request: Request) -> Response:
    if not _wants_html(request):
        # Shippers' version probe: an ingest key, like every Elasticsearch-compatible
        # route (Filebeat, Logstash and omelasticsearch send their credentials on it).
        await require(request, "events:ingest")
        return await es_info()
    return await _page(request, "overview", "overview.html")


@router.get("/login")
async def login_page(request: Request) -> Response:
    # The page's script goes to page_data.next after signing in: checked here, once, so
    # ``?next=/%09/evil.example`` or ``//evil`` cannot send a fresh session elsewhere.
    nxt = safe_next(request.query_params.get("next"))
    return _render(request, "login.html", "login", None, page_data={"next": "/" if nxt.startswith("/login") else nxt})


@router.get("/lang/{code}")
async def switch_language(code: str, request: Request, next: str = "/") -> Response:
    """Sets the language cookie (a preference, not a secret) and goes back."""
    if code not in LANGUAGES:
        raise HTTPException(404, f"no language {code!r}; choose {', '.join(LANGUAGES)}")
    target = safe_next(next)
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", httponly=True, path="/")
    return resp


@router.get("/alerts")
async def alerts_page(request: Request) -> Response:
    return await _page(request, "alerts", "alerts.html")


@router.get("/alerts/{alert_id}")
async def alert_page(alert_id: int, request: Request) -> Response:
    return await _page(request, "alert", "alert.html", page_data={"alert_id": alert_id})


@router.get("/incidents")
async def incidents_page(request: Request) -> Response:
    return await _page(request, "incidents", "incidents.html")


@router.get("/cases")
async def cases_page(request: Request) -> Response:
    return await _page(request, "cases", "cases.html")


@router.get("/cases/{case_id}")
async def case_page(case_id: int, request: Request) -> Response:
    return await _page(request, "cases", "case.html", page_data={"case_id": case_id})


@router.get("/search")
async def search_page(request: Request) -> Response:
    return await _page(request, "search", "search.html")


@router.get("/assets")
async def assets_page(request: Request) -> Response:
    return await _page(request, "assets", "assets.html")


@router.get("/playbooks")
async def playbooks_page(request: Request) -> Response:
    return await _page(request, "playbooks", "playbooks.html")


@router.get("/rules")
async def rules_page(request: Request) -> Response:
    return await _page(request, "rules", "rules.html")


@router.get("/reports")
async def reports_page(request: Request) -> Response:
    return await _page(request, "reports", "reports.html")
