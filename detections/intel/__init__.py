"""Threat intelligence: IOC feeds (STIX 2.1, MISP, CSV) matched against every event.

Public surface:

* :func:`load_feed_path`, :func:`load_feed_bytes` -> :class:`FeedLoad` (indicators + problems)
* :class:`IocIndex` (O(1) lookups, subdomain walk, CIDRs by prefix length)
* :class:`IntelMatcher`: a ``core.protocols.Detector``; :data:`FIELDS` says which event fields it reads
* :class:`FeedManager` / :class:`FeedSpec`: scheduled refresh of files and HTTP(S) feeds
"""
from detections.intel.feedload import FeedError, FeedLoad
from detections.intel.feeds import feed_name, load_feed_bytes, load_feed_path, load_misp_dir, sniff_format
from detections.intel.index import IocIndex
from detections.intel.indicators import IOC_TYPES, FeedProblem, Indicator, IocValueError, confidence_level
from detections.intel.manager import FeedManager, FeedSpec, FeedStatus
from detections.intel.matcher import FIELDS, IntelMatcher
from detections.intel.stix_pattern import StixPatternError, UnsupportedPattern, parse_pattern, pattern_iocs

__all__ = [
    "FeedError",
    "FeedLoad",
    "feed_name",
    "load_feed_bytes",
    "load_feed_path",
    "load_misp_dir",
    "sniff_format",
    "IocIndex",
    "IOC_TYPES",
    "FeedProblem",
    "Indicator",
    "IocValueError",
    "confidence_level",
    "FeedManager",
    "FeedSpec",
    "FeedStatus",
    "FIELDS",
    "IntelMatcher",
    "StixPatternError",
    "UnsupportedPattern",
    "parse_pattern",
    "pattern_iocs",
]
