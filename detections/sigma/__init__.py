"""The streaming Sigma engine: load rule folders with pySigma, compile each rule into an
in-process matcher, route events by log source, correlate in the stream.

Example::

    from detections.sigma import SigmaEngine, load_rules
    ruleset = load_rules(["path/to/rules"], cache_dir="data/cache/sigma")
    for failure in ruleset.failures:
        print(failure.path, failure.reason)      # never silently skipped
    engine = SigmaEngine(ruleset.rules)
    detections = engine.process(event)           # core.protocols.Detector
"""
from detections.sigma.correlation import CorrelationSpec, CorrelationState
from detections.sigma.engine import CompiledRule, SigmaEngine
from detections.sigma.loader import RuleFailure, RuleLoadError, RuleSet, RuleSpec, load_rules, rule_files
from detections.sigma.matchers import EventView
from detections.sigma.plan import PlanError

__all__ = [
    "SigmaEngine",
    "CompiledRule",
    "load_rules",
    "rule_files",
    "RuleSet",
    "RuleSpec",
    "RuleFailure",
    "RuleLoadError",
    "PlanError",
    "EventView",
    "CorrelationSpec",
    "CorrelationState",
]
