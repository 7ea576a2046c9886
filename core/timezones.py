"""Time zones: the one vocabulary for zone names in settings and the site-wide default.

Many sources write local time with no offset (RFC 3164 syslog, nginx/Apache error logs,
Postgres without ``%Z``, cameras). Their timestamps are read in the zone configured for
the source (``syslog.timezone``, ``tail[].timezone``), else in the site's zone
(``site.timezone``, :data:`DEFAULT_SITE_ZONE`: Ho Chi Minh City). A zone name is an IANA
name checked when settings load, so a typo is a start-up error, not silently UTC.

Example::

    >>> check_zone("Asia/Ho_Chi_Minh")
    'Asia/Ho_Chi_Minh'
"""
from __future__ import annotations

import datetime as _dt
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

__all__ = ["DEFAULT_SITE_ZONE", "check_zone", "ZoneName", "effective_zone", "format_site_time", "offset_label"]

DEFAULT_SITE_ZONE = "Asia/Ho_Chi_Minh"


def check_zone(name: str) -> str:
    """``name`` when it is an IANA zone this machine knows; ValueError saying so otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as {DEFAULT_SITE_ZONE} or UTC") from exc
    return name


ZoneName = Annotated[str, AfterValidator(check_zone)]
"""A settings field holding a zone name, validated at load."""


def effective_zone(source_zone: str | None, site_zone: str | None) -> str:
    """The zone for a source's zone-less timestamps: its own, else the site's, else the default."""
    return source_zone or site_zone or DEFAULT_SITE_ZONE


def offset_label(zone: str, at: _dt.datetime | None = None) -> str:
    """``UTC+07`` (``UTC+05:30``, ``UTC-03``): the zone's offset at ``at`` (now by default)."""
    off = (at or _dt.datetime.now(_dt.timezone.utc)).astimezone(ZoneInfo(zone)).utcoffset() or _dt.timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign, minutes = ("-" if minutes < 0 else "+"), abs(minutes)
    return f"UTC{sign}{minutes // 60:02d}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


def format_site_time(ts: str | _dt.datetime | None, zone: str = DEFAULT_SITE_ZONE, *, with_zone: bool = True) -> str:
    """``2026-12-03 14:05:09 (UTC+07)``: the one way console, CLI and reports write a time.

    ``ts`` is an ISO 8601 text (``Z`` or an offset; a naive one is UTC, as we store them) or
    an aware datetime. Seconds are always kept. Text that is not a time comes back as it is.

    Example::

        >>> format_site_time("2026-12-03T07:05:09.123Z", "Asia/Ho_Chi_Minh")
        '2026-12-03 14:05:09 (UTC+07)'
    """
    if ts is None or ts == "":
        return ""
    if isinstance(ts, str):
        try:
            t = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return ts
    else:
        t = ts
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    local = t.astimezone(ZoneInfo(zone))
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text} ({offset_label(zone, t)})" if with_zone else text
