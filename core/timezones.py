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

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

__all__ = ["DEFAULT_SITE_ZONE", "check_zone", "ZoneName", "effective_zone"]

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
