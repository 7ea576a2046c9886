"""The web console: server-rendered page shells (Jinja2, autoescaped) whose data comes
from the same ``/api/v1`` the CLI and scripts use, with the same session and roles.

``citysoc/`` mounts it with :func:`mount_console` after building the API app.
"""
from dashboards.console import mount_console

__all__ = ["mount_console"]
