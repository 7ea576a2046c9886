"""Mounts the console on the API app: page routes, static files, the console's own
JSON (``/api/v1/console/...``) and the security headers.

Example (what ``citysoc/runtime.py`` does)::

    app = create_app(state)
    mount_console(app)
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.app import API_PREFIX, ERROR_RESPONSES
from api.security import annotate_permissions
from dashboards import overview_api, pages
from dashboards.security_headers import SecurityHeadersMiddleware

__all__ = ["mount_console", "STATIC_PREFIX"]

STATIC_PREFIX = "/static/console"


def mount_console(app: FastAPI) -> FastAPI:
    """Adds the console to ``app``; its ``GET /`` takes precedence over the API's
    Elasticsearch-info route and hands non-browser callers to it."""
    annotate_permissions(overview_api.router.routes)
    app.include_router(overview_api.router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    before = len(app.router.routes)
    app.include_router(pages.router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added  # first match wins: the negotiating GET / goes before the ES-info one
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(Path(__file__).with_name("static"))), name="console-static")
    app.add_middleware(SecurityHeadersMiddleware)
    return app
