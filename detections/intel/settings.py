"""Typed settings for threat-intel feeds, and the builder for the :class:`FeedManager`.

For the settings owner to embed under an ``intel:`` key of ``citysoc.yml``; ``citysoc/``
builds the manager, schedules :meth:`FeedManager.refresh` (or calls ``start``) and
hands ``IntelMatcher(manager.current)`` to the pipeline.

Example ``citysoc.yml``::

    intel:
      feeds:
        - {name: vncert, location: https://intel.example/vncert.json, refresh_s: 900}
        - {name: partners, location: /etc/citysoc/feeds/partners.csv}
        - {name: circl, location: https://www.circl.lu/doc/misp/feed-osint/manifest.json}
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from detections.intel.manager import FeedManager, FeedSpec
from detections.intel.matcher import FIELDS, IntelMatcher

__all__ = ["FeedSettings", "IntelSettings", "build_feed_manager", "build_matcher"]


class FeedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Becomes the rule id of its matches: ``intel:<name>``."""
    location: str
    """A file, a MISP feed folder, or an http(s) URL (a document, or a MISP feed's manifest.json)."""
    format: Literal["auto", "stix", "misp", "csv"] = "auto"
    refresh_s: float = Field(3600, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers, e.g. ``Authorization`` for a MISP instance."""


class IntelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    feeds: list[FeedSettings] = Field(default_factory=list)
    check_every_s: float = Field(60, gt=0)
    """How often the refresher wakes to refresh the feeds that are due."""
    fields: dict[str, str] | None = None
    """Event field -> kind (ip, domain, host, url, hash, email); default: detections.intel.FIELDS."""
    http_timeout_s: float = Field(30, gt=0)


def build_feed_manager(settings: IntelSettings) -> FeedManager:
    return FeedManager([FeedSpec(f.name, f.location, f.format, f.refresh_s, dict(f.headers)) for f in settings.feeds],
                       timeout_s=settings.http_timeout_s)


def build_matcher(settings: IntelSettings, manager: FeedManager) -> IntelMatcher:
    return IntelMatcher(manager.current, settings.fields if settings.fields is not None else FIELDS)
