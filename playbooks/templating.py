"""``with:`` values: plain data with ``{{ expression }}`` holes, compiled at load time.

A string that is exactly one hole keeps the value's type (``ttl: "{{ inputs.ttl }}"``
gives an int, ``to: "{{ inputs.recipients }}"`` a list); a hole inside text is
formatted into the text. Holes use :mod:`playbooks.expressions`, so templating cannot
run code either. Values produced here are still *data*: each action validates its
inputs by type (an IP must parse as an IP) and passes them to nft, SQL or SMTP as
arguments, never by splicing text into a command.

Example::

    t = compile_template({"ip": "{{ alert.entities.source_ip }}", "note": "seen {{ alert.count }} times"})
    t.render({"alert": {"entities": {"source_ip": "10.0.0.5"}, "count": 3}})
    # {'ip': '10.0.0.5', 'note': 'seen 3 times'}
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from playbooks.expressions import Expression, ExpressionError, compile_expression

__all__ = ["Template", "compile_template", "TemplateError"]

_HOLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class TemplateError(ValueError):
    """A template that cannot be compiled or rendered; ``path`` names the key inside ``with``."""

    def __init__(self, message: str, path: str = ""):
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


@dataclass(slots=True)
class _Text:
    parts: list[str | Expression]

    def render(self, ctx: Mapping[str, Any]) -> Any:
        if len(self.parts) == 1 and isinstance(self.parts[0], Expression):
            return self.parts[0].evaluate(ctx)
        return "".join(p if isinstance(p, str) else _fmt(p.evaluate(ctx)) for p in self.parts)


def _compile(value: Any, path: str, exprs: list[Expression]) -> Any:
    if isinstance(value, str):
        if "{{" not in value:
            if "}}" in value:
                raise TemplateError("'}}' without an opening '{{'", path)
            return value
        parts: list[str | Expression] = []
        pos = 0
        for m in _HOLE.finditer(value):
            if m.start() > pos:
                parts.append(value[pos:m.start()])
            try:
                e = compile_expression(m.group(1).strip())
            except ExpressionError as exc:
                raise TemplateError(f"bad expression {{{{{m.group(1)}}}}}: {exc.message}"
                                    + (f" at position {exc.position}" if exc.position is not None else ""),
                                    path) from None
            exprs.append(e)
            parts.append(e)
            pos = m.end()
        rest = value[pos:]
        if "{{" in rest or "}}" in rest:
            raise TemplateError("unbalanced '{{' / '}}'", path)
        if rest:
            parts.append(rest)
        return _Text(parts)
    if isinstance(value, dict):
        return {k: _compile(v, f"{path}.{k}" if path else str(k), exprs) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile(v, f"{path}[{i}]", exprs) for i, v in enumerate(value)]
    return value


def _render(node: Any, ctx: Mapping[str, Any], path: str) -> Any:
    if isinstance(node, _Text):
        try:
            return node.render(ctx)
        except ExpressionError as exc:
            raise TemplateError(exc.message, path) from None
    if isinstance(node, dict):
        return {k: _render(v, ctx, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, ctx, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


@dataclass(slots=True)
class Template:
    """A compiled ``with:`` block (or any value); render it against a run's context."""

    tree: Any
    expressions: list[Expression]

    def render(self, ctx: Mapping[str, Any]) -> Any:
        return _render(self.tree, ctx, "")

    def step_refs(self) -> set[str]:
        refs: set[str] = set()
        for e in self.expressions:
            refs |= e.step_refs()
        return refs


def compile_template(value: Any) -> Template:
    """Compile every ``{{ }}`` in ``value``; raises :class:`TemplateError` with the key path."""
    exprs: list[Expression] = []
    return Template(_compile(value, "", exprs), exprs)
