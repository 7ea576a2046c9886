"""What every subcommand shares: loading settings with a clear error, and the consoles."""
from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from core.settings import Settings, SettingsError, load_settings

__all__ = ["config_option", "load", "out", "err"]

out = Console()
err = Console(stderr=True)

config_option = click.option(
    "--config", "config", type=click.Path(dir_okay=False), default=None, envvar="CITYSOC_CONFIG",
    help="Settings file (default ./citysoc.yml when present).",
)


def load(config: str | None, **overrides: Any) -> Settings:
    """Settings from file + environment + the flags given; exits with the reason on error."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        node = nested
        parts = key.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    try:
        return load_settings(config, overrides=nested)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
