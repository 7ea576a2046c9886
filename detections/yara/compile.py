"""Compile YARA rule sets (our pack plus configured folders) once, and cache the result.

Analysts point citysoc at rule folders they did not write (signature-base, Yara-Rules).
Those folders use the externals THOR and LOKI define, need ``index.yar`` files for shared
private rules, and sometimes contain a file that does not compile. So:

* every rule file gets its own namespace (its stem), except a folder holding an
  ``index.yar``, which is compiled through that index as one namespace (the folder name);
* the externals ``filename``, ``filepath``, ``extension``, ``filetype`` and ``owner`` are
  always defined (as empty strings at compile time; the scanner fills them per file);
* a file that fails is reported with its path and line, never dropped silently: strict
  mode raises :class:`YaraCompileError` with every failure, lenient mode compiles the
  rest and lists the failures in :attr:`CompiledRules.errors`;
* compiled rules are saved with ``yara.Rules.save`` under a key hashed from the rule
  files' paths and contents (and the yara version), so the next start loads in
  milliseconds instead of recompiling.

Example::

    >>> compiled = compile_rules([Path("../shared/corpora/yara")], cache_dir=Path("data/cache"))
    >>> compiled.rule_count > 0
    True
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yara

from detections.packs import YARA_PACK

__all__ = [
    "PACK_DIR",
    "EXTERNALS",
    "RULE_SUFFIXES",
    "RuleError",
    "YaraCompileError",
    "CompiledRules",
    "discover_rule_files",
    "compile_rules",
]

PACK_DIR = YARA_PACK
"""Our own YARA pack (webshells, camera firmware, ETL scripts)."""

EXTERNALS: tuple[str, ...] = ("filename", "filepath", "extension", "filetype", "owner")
"""Externals that public rule sets (THOR/LOKI conventions) expect to exist."""

RULE_SUFFIXES = (".yar", ".yara")

_ERR_RE = re.compile(r"^(?P<file>.*?)\((?P<line>\d+)\): (?P<msg>.*)$", re.S)


@dataclass(frozen=True, slots=True)
class RuleError:
    """One rule file that does not compile: where, and what yara said."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class YaraCompileError(Exception):
    """Rule files failed to compile; ``errors`` lists every failing file with its line."""

    def __init__(self, errors: Sequence[RuleError]):
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors)
        super().__init__(
            f"{len(self.errors)} YARA rule file(s) failed to compile:\n{lines}\n"
            "Fix or remove these files, or compile leniently (strict=False) to load the others."
        )


@dataclass(slots=True)
class CompiledRules:
    """The compiled rules and what went into them."""

    rules: yara.Rules
    namespaces: dict[str, Path]
    rule_count: int
    errors: list[RuleError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cache_hit: bool = False
    cache_key: str = ""


def _parse_error(exc: Exception, fallback: Path) -> RuleError:
    text = str(exc)
    m = _ERR_RE.match(text)
    if m:
        return RuleError(m.group("file"), int(m.group("line")), m.group("msg").strip())
    return RuleError(str(fallback), None, text)


def discover_rule_files(sources: Sequence[Path]) -> dict[str, Path]:
    """Map namespace -> rule file for files and folders given.

    A folder with an ``index.yar`` compiles through it (namespace: the folder name);
    otherwise every ``*.yar``/``*.yara`` below it is its own namespace (its stem, or
    ``<folder>.<stem>`` when two folders hold the same stem).
    """
    out: dict[str, Path] = {}
    for src in sources:
        src = Path(src)
        if not src.exists():
            raise YaraCompileError([RuleError(str(src), None, "no such file or folder")])
        if src.is_file():
            files = [(src.stem, src)]
        elif (src / "index.yar").is_file():
            files = [(src.resolve().name, src / "index.yar")]
        else:
            files = [
                (p.stem, p)
                for p in sorted(src.rglob("*"))
                if p.suffix.lower() in RULE_SUFFIXES and p.is_file()
            ]
            if not files:
                raise YaraCompileError([RuleError(str(src), None, "folder holds no .yar/.yara files")])
        for ns, path in files:
            if ns in out and out[ns] != path:
                ns = f"{path.parent.name}.{ns}"
            n, base = 2, ns
            while ns in out and out[ns] != path:
                ns, n = f"{base}.{n}", n + 1
            out[ns] = path
    return out


def _cache_key(namespaces: dict[str, Path]) -> str:
    h = hashlib.sha256()
    h.update(f"yara {yara.__version__} externals {','.join(EXTERNALS)}\n".encode())
    for ns, path in sorted(namespaces.items()):
        h.update(f"ns {ns} {path.resolve()}\n".encode())
        # An index pulls in its siblings through include: hash the whole folder.
        members = (
            sorted(p for p in path.parent.rglob("*") if p.suffix.lower() in RULE_SUFFIXES and p.is_file())
            if path.name == "index.yar"
            else [path]
        )
        for p in members:
            h.update(f"file {p}\n".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:32]


def _compile(filepaths: dict[str, str]) -> yara.Rules:
    return yara.compile(filepaths=filepaths, externals=dict.fromkeys(EXTERNALS, ""), includes=True)


def compile_rules(
    sources: Sequence[Path] = (),
    *,
    include_pack: bool = True,
    cache_dir: Path | None = None,
    strict: bool = True,
) -> CompiledRules:
    """Compile our pack (unless ``include_pack`` is false) and every source given.

    ``strict`` raises :class:`YaraCompileError` naming every file that fails; lenient
    mode compiles the rest and returns the failures in ``errors``. With ``cache_dir``,
    a clean compilation is saved there and reused while the rule files are unchanged.
    """
    all_sources = ([PACK_DIR] if include_pack else []) + [Path(s) for s in sources]
    if not all_sources:
        raise YaraCompileError([RuleError("<none>", None, "no rule sources given")])
    namespaces = discover_rule_files(all_sources)
    key = _cache_key(namespaces)
    cached = _load_cache(cache_dir, key) if cache_dir else None
    if cached is not None:
        rules, meta = cached
        return CompiledRules(rules, namespaces, meta["rule_count"], [], meta.get("warnings", []), True, key)

    filepaths = {ns: str(p) for ns, p in namespaces.items()}
    errors: list[RuleError] = []
    try:
        rules = _compile(filepaths)
    except yara.Error as joint_exc:
        # Find every failing file, not just the first one yara stopped at.
        good: dict[str, str] = {}
        for ns, p in filepaths.items():
            try:
                _compile({ns: p})
                good[ns] = p
            except yara.Error as exc:
                errors.append(_parse_error(exc, Path(p)))
        if not errors:
            errors.append(_parse_error(joint_exc, Path("<rule set>")))
        if strict or not good:
            raise YaraCompileError(errors) from joint_exc
        rules = _compile(good)
        namespaces = {ns: namespaces[ns] for ns in good}
    warnings = list(getattr(rules, "warnings", []) or [])
    count = sum(1 for _ in rules)
    if cache_dir and not errors:
        _save_cache(cache_dir, key, rules, {"rule_count": count, "warnings": warnings})
    return CompiledRules(rules, namespaces, count, errors, warnings, False, key)


def _load_cache(cache_dir: Path, key: str) -> tuple[yara.Rules, dict] | None:
    rules_path = cache_dir / f"yara-{key}.yarc"
    meta_path = cache_dir / f"yara-{key}.json"
    if not (rules_path.is_file() and meta_path.is_file()):
        return None
    try:
        return yara.load(str(rules_path)), json.loads(meta_path.read_text())
    except (yara.Error, OSError, ValueError):
        return None  # a damaged cache is rebuilt, never trusted


def _save_cache(cache_dir: Path, key: str, rules: yara.Rules, meta: dict) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".yara-", suffix=".tmp")
    os.close(fd)
    try:
        rules.save(tmp)
        os.replace(tmp, cache_dir / f"yara-{key}.yarc")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    (cache_dir / f"yara-{key}.json.tmp").write_text(json.dumps(meta))
    os.replace(cache_dir / f"yara-{key}.json.tmp", cache_dir / f"yara-{key}.json")
