"""Load Sigma rule folders into plain, picklable rule specs, with every failure explained.

Rules are parsed with pySigma (``SigmaCollection``) file by file, so a broken file costs
only itself and its failure names the file. Each rule becomes a :class:`RuleSpec`: its
metadata, its route inputs and its plan (see :mod:`detections.sigma.plan`), or a
correlation spec. Nothing is skipped silently: a rule that cannot be matched is a
:class:`RuleFailure` with the reason.

Cache: specs are stored per file, keyed by the file's content hash, the plan format
version and the placeholder values, under ``cache_dir``. The format is ``marshal`` of
plain tuples (specs and plans hold only builtin types): it loads several times faster
than pickling dataclasses, and a second start with unchanged files never parses YAML.

Rule test files (``X.tests.yml``, see :mod:`detections.sigma.ruletests`) sit beside the
rules and are not rules: the loader skips them by name.
"""
from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import marshal
import multiprocessing as mp
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detections.sigma.correlation import CORRELATION_TYPES, CorrelationSpec
from detections.sigma.fields import FIELDS_VERSION, resolve_field
from detections.sigma.logsources import route_for
from detections.sigma.plan import PLAN_VERSION, PlanError, build_plan

__all__ = [
    "RuleSpec",
    "RuleFailure",
    "RuleSet",
    "RuleLoadError",
    "rule_files",
    "load_rules",
    "is_test_file",
]

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RULE_SUFFIXES = (".yml", ".yaml")
_TEST_SUFFIXES = (".tests.yml", ".tests.yaml")


class RuleLoadError(ValueError):
    """A rules path given by the user cannot be used at all (missing, not a folder or file)."""


@dataclass
class RuleSpec:
    """One loadable rule, as data."""

    id: str
    title: str
    path: str
    level: str = "medium"
    status: str = ""
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    description: str = ""
    product: str | None = None
    category: str | None = None
    service: str | None = None
    plan: tuple[Any, ...] | None = None
    correlation: CorrelationSpec | None = None
    warnings: list[str] = field(default_factory=list)
    title_vi: str = ""
    """Vietnamese title (custom field ``title_vi``; our pack has one for every rule,
    SigmaHQ rules none, and the console then labels the English title as English)."""
    description_vi: str = ""
    """Vietnamese description (custom field ``description_vi``)."""

    @property
    def kind(self) -> str:
        return "correlation" if self.correlation is not None else "rule"

    @property
    def techniques(self) -> list[str]:
        """ATT&CK technique ids from the tags (``attack.t1059.001`` -> ``T1059.001``)."""
        out = []
        for t in self.tags:
            low = t.lower()
            if low.startswith("attack.t") and low[8:9].isdigit():
                out.append(t[7:].upper())
        return out

    def resolve(self, name: str) -> str:
        """The view key of Sigma field ``name`` for this rule's log source (cached)."""
        return _resolve_cached(self.product, self.category, self.service, name)


@dataclass
class RuleFailure:
    """A rule (or a whole file) that cannot be used, and why."""

    path: str
    reason: str
    rule_id: str | None = None
    title: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rule_id": self.rule_id, "title": self.title, "reason": self.reason}


@dataclass
class RuleSet:
    """What loading found: usable rules, failures, and how much came from the cache."""

    rules: list[RuleSpec] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)
    files: int = 0
    cached_files: int = 0

    @property
    def total(self) -> int:
        return len(self.rules) + len(self.failures)

    @property
    def load_rate(self) -> float:
        return len(self.rules) / self.total if self.total else 1.0


@functools.lru_cache(maxsize=4096)
def _resolve_cached(product: str | None, category: str | None, service: str | None, name: str) -> str:
    route, _ = route_for(product, category, service)
    return resolve_field(name, windows=route.windows is True, category=category,
                         product=(product or "").lower() or None, service=(service or "").lower() or None)


def is_test_file(path: Path) -> bool:
    return path.name.endswith(_TEST_SUFFIXES)


def rule_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every rule file under ``paths`` (folders recursed), sorted, test files left out."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found: list[str] = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                found.extend(
                    os.path.join(dirpath, n) for n in filenames if n.endswith(_RULE_SUFFIXES) and not n.endswith(_TEST_SUFFIXES)
                )
            out.extend(Path(f) for f in sorted(found))
        elif p.is_file():
            out.append(p)
        else:
            raise RuleLoadError(f"rules path {p} does not exist; give a Sigma rule file or a folder of rules")
    return out


def _level(rule: Any) -> str:
    lvl = getattr(rule, "level", None)
    return lvl.name.lower() if lvl is not None else "medium"


def _meta(rule: Any, path: str) -> dict[str, Any]:
    rid = str(rule.id) if rule.id else (rule.name or Path(path).stem)
    custom = getattr(rule, "custom_attributes", None) or {}
    return {
        "id": rid,
        "title": rule.title or Path(path).stem,
        "path": path,
        "level": _level(rule),
        "status": rule.status.name.lower() if getattr(rule, "status", None) else "",
        "name": rule.name,
        "tags": [str(t) for t in (rule.tags or [])],
        "description": (rule.description or "").strip(),
        # pySigma keeps fields outside the Sigma spec as custom attributes.
        "title_vi": str(custom.get("title_vi") or "").strip(),
        "description_vi": str(custom.get("description_vi") or "").strip(),
    }


def _spec_from_rule(rule: Any, path: str, placeholders: Mapping[str, Sequence[str]] | None) -> RuleSpec:
    meta = _meta(rule, path)
    ls = rule.logsource
    product, category, service = ls.product, ls.category, ls.service
    route, warnings = route_for(product, category, service)
    windows = route.windows is True

    def resolve(name: str) -> str:
        return resolve_field(name, windows=windows, category=(category or None), product=(product or "").lower() or None,
                             service=(service or "").lower() or None)

    plan = build_plan(rule, resolve, placeholders)
    return RuleSpec(product=product, category=category, service=service, plan=plan, warnings=warnings, **meta)


def _spec_from_correlation(rule: Any, path: str) -> RuleSpec:
    from sigma.correlations import SigmaCorrelationCondition

    meta = _meta(rule, path)
    ctype = rule.type.name.lower()
    if ctype not in CORRELATION_TYPES:
        raise PlanError(f"correlation type {ctype} is not supported in the stream (supported: {', '.join(CORRELATION_TYPES)})")
    cond = rule.condition
    if not isinstance(cond, SigmaCorrelationCondition):
        raise PlanError("extended correlation conditions (boolean expressions over rules) are not supported")
    value_field = cond.fieldref if isinstance(cond.fieldref, str) else (cond.fieldref[0] if cond.fieldref else None)
    aliases: dict[str, dict[str, str]] = {}
    for alias in rule.aliases:
        aliases[alias.alias] = {ref.reference: fname for ref, fname in alias.mapping.items()}
    spec = CorrelationSpec(
        type=ctype,
        rules=[r.reference for r in (rule.rules or [])],
        timespan=float(rule.timespan.seconds),
        group_by=list(rule.group_by or []),
        op=cond.op.name.lower(),
        count=int(cond.count),
        value_field=value_field,
        aliases=aliases,
        generate=bool(rule.generate),
    )
    return RuleSpec(correlation=spec, **meta)


def _register_modifier_aliases() -> None:
    """The Sigma specification names ``utf16le`` (= ``wide``); pySigma 1.5 only knows
    ``wide``. Register the alias in pySigma's modifier registry (a plain dict meant for
    lookup by name) so such rules load instead of failing."""
    from sigma.modifiers import SigmaWideModifier, modifier_mapping

    modifier_mapping.setdefault("utf16le", SigmaWideModifier)


def _load_file(path: Path, placeholders: Mapping[str, Sequence[str]] | None) -> tuple[list[RuleSpec], list[RuleFailure]]:
    _register_modifier_aliases()
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaRuleLocation
    from sigma.rule import SigmaRule

    spath = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [RuleFailure(spath, f"cannot read file: {exc}")]
    try:
        # libyaml (C) parses ~10x faster than the pure-Python loader pySigma's from_yaml uses.
        docs = list(yaml.load_all(text, Loader=_YAML_LOADER))
    except yaml.YAMLError as exc:
        return [], [RuleFailure(spath, f"not valid YAML: {exc}")]
    try:
        # References between rules are resolved by the engine across files, not here.
        coll = SigmaCollection.from_dicts(
            docs, collect_errors=True, source=SigmaRuleLocation(path), resolve_references=False
        )
    except Exception as exc:  # pySigma's own errors for a document it cannot use
        return [], [RuleFailure(spath, f"not a valid Sigma file: {exc}")]
    specs: list[RuleSpec] = []
    failures: list[RuleFailure] = []
    rule_errors = {str(e) for rule in coll.rules for e in (rule.errors or [])}
    for err in getattr(coll, "errors", []) or []:
        if str(err) not in rule_errors:  # pySigma reports a rule's errors on the collection too
            failures.append(RuleFailure(spath, f"{type(err).__name__}: {err}"))
    for rule in coll.rules:
        rid = str(rule.id) if getattr(rule, "id", None) else None
        title = getattr(rule, "title", None)
        if rule.errors:
            failures.append(RuleFailure(spath, "; ".join(f"{type(e).__name__}: {e}" for e in rule.errors), rid, title))
            continue
        try:
            if isinstance(rule, SigmaCorrelationRule):
                specs.append(_spec_from_correlation(rule, spath))
            elif isinstance(rule, SigmaRule):
                specs.append(_spec_from_rule(rule, spath, placeholders))
            else:
                failures.append(RuleFailure(spath, f"{type(rule).__name__} documents are not supported", rid, title))
        except PlanError as exc:
            failures.append(RuleFailure(spath, str(exc), rid, title))
        except Exception as exc:  # a pySigma error while expanding modifiers and the like
            failures.append(RuleFailure(spath, f"{type(exc).__name__}: {exc}", rid, title))
    return specs, failures


def _cache_path(cache_dir: Path) -> Path:
    return cache_dir / f"sigma-plans-v{PLAN_VERSION}.marshal"


_SPEC_FIELDS = [f.name for f in dataclasses.fields(RuleSpec)]
_CORR_FIELDS = [f.name for f in dataclasses.fields(CorrelationSpec)]
_FAIL_FIELDS = [f.name for f in dataclasses.fields(RuleFailure)]


def _spec_to_tuple(s: RuleSpec) -> tuple[Any, ...]:
    vals = []
    for name in _SPEC_FIELDS:
        v = getattr(s, name)
        if name == "correlation" and v is not None:
            v = tuple(getattr(v, n) for n in _CORR_FIELDS)
        vals.append(v)
    return tuple(vals)


def _spec_from_tuple(t: tuple[Any, ...]) -> RuleSpec:
    d = dict(zip(_SPEC_FIELDS, t))
    if d.get("correlation") is not None:
        d["correlation"] = CorrelationSpec(**dict(zip(_CORR_FIELDS, d["correlation"])))
    return RuleSpec(**d)


def _read_cache(cache_dir: Path | None) -> dict[str, tuple[str, list[RuleSpec], list[RuleFailure]]]:
    if cache_dir is None:
        return {}
    try:
        raw = _cache_path(cache_dir).read_bytes()
        gc_was = gc.isenabled()
        gc.disable()  # millions of small tuples: the collector would only slow the load down
        try:
            data = marshal.loads(raw)
        finally:
            if gc_was:
                gc.enable()
        if not isinstance(data, dict) or data.get("fields") != (_SPEC_FIELDS, _CORR_FIELDS, _FAIL_FIELDS):
            return {}
        return {
            path: (digest, [_spec_from_tuple(t) for t in specs], [RuleFailure(**dict(zip(_FAIL_FIELDS, f))) for f in fails])
            for path, (digest, specs, fails) in data["files"].items()
        }
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return {}  # no cache or an unreadable one: parse again


def _write_cache(cache_dir: Path, data: dict[str, tuple[str, list[RuleSpec], list[RuleFailure]]]) -> None:
    payload = {
        "fields": (_SPEC_FIELDS, _CORR_FIELDS, _FAIL_FIELDS),
        "files": {
            path: (digest, [_spec_to_tuple(s) for s in specs], [tuple(getattr(f, n) for n in _FAIL_FIELDS) for f in fails])
            for path, (digest, specs, fails) in data.items()
        },
    }
    try:
        blob = marshal.dumps(payload)
    except ValueError:
        return  # a value marshal cannot store (should not happen): simply run uncached
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".sigma-plans-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, _cache_path(cache_dir))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _parse_chunk(args: tuple[list[str], Mapping[str, Sequence[str]] | None]) -> list[tuple[str, list[RuleSpec], list[RuleFailure]]]:
    paths, placeholders = args
    return [(p, *_load_file(Path(p), placeholders)) for p in paths]


def _parse_many(
    files: list[Path], placeholders: Mapping[str, Sequence[str]] | None, workers: int | None
) -> dict[str, tuple[list[RuleSpec], list[RuleFailure]]]:
    n = workers if workers is not None else min(os.cpu_count() or 1, 4)
    names = [str(f) for f in files]
    # fork is only safe from a single-threaded process; otherwise parse in this process.
    if n > 1 and len(names) >= 200 and threading.active_count() == 1 and "fork" in mp.get_all_start_methods():
        import sigma.collection  # noqa: F401  - imported once here, inherited by the workers

        chunks = [names[i::n * 4] for i in range(n * 4)]
        try:
            with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("fork")) as pool:
                results = [r for part in pool.map(_parse_chunk, [(c, placeholders) for c in chunks]) for r in part]
            return {p: (specs, fails) for p, specs, fails in results}
        except (OSError, RuntimeError):
            pass  # no processes to be had: fall back to parsing here
    return {p: _load_file(Path(p), placeholders) for p in names}


def load_rules(
    paths: Iterable[str | os.PathLike[str]],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    workers: int | None = None,
) -> RuleSet:
    """Load every rule under ``paths``. Failures are collected, never raised (except for a
    path that does not exist, which raises :class:`RuleLoadError`).

    Parsing with pySigma is the slow part of a cold start (about 2 ms a file), so when
    many files miss the cache they are parsed in ``workers`` processes (default: the CPU
    count, at most 4; 1 disables it). Results and their order do not depend on it."""
    files = rule_files(paths)
    cdir = Path(cache_dir) if cache_dir is not None else None
    cache = _read_cache(cdir)
    salt = repr(sorted((k, tuple(v)) for k, v in (placeholders or {}).items())).encode() + b"fields-v%d" % FIELDS_VERSION
    out = RuleSet(files=len(files))
    fresh: dict[str, tuple[str, list[RuleSpec], list[RuleFailure]]] = {}
    entries: list[tuple[Path, str, str]] = []
    for f in files:
        key = os.path.abspath(f)
        try:
            raw = f.read_bytes()
        except OSError as exc:
            out.failures.append(RuleFailure(str(f), f"cannot read file: {exc.strerror}"))
            continue
        entries.append((f, key, hashlib.blake2b(raw + b"\0" + salt, digest_size=16).hexdigest()))
    misses = [f for f, key, digest in entries if not (key in cache and cache[key][0] == digest)]
    parsed = _parse_many(misses, placeholders, workers)
    for f, key, digest in entries:
        hit = cache.get(key)
        if hit is not None and hit[0] == digest:
            specs, failures = hit[1], hit[2]
            out.cached_files += 1
        else:
            specs, failures = parsed[str(f)]
        fresh[key] = (digest, specs, failures)
        out.rules.extend(specs)
        out.failures.extend(failures)
    if cdir is not None and (out.cached_files != len(files) or len(cache) != len(fresh)):
        merged = {**cache, **fresh}
        _write_cache(cdir, merged)
    return out
