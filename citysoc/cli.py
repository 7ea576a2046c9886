"""The ``citysoc`` command line. Each subcommand lives in ``citysoc/commands/<name>.py``
and is listed once in :data:`COMMANDS` (one registry, explicit order for ``--help``)."""
from __future__ import annotations

import importlib

import click

from citysoc import __version__

# module name in citysoc.commands -> attribute holding the click command or group
COMMANDS: list[tuple[str, str]] = [
    ("serve", "serve"),
    ("ingest", "ingest"),
    ("search", "search"),
    ("deadletters", "deadletters"),
    ("scan", "scan"),
    ("intel", "intel"),
    ("detect", "detect"),
    ("rules", "rules"),
    ("scheduled", "scheduled"),
    ("alerts", "alerts"),
    ("users", "users"),
    ("apikeys", "apikeys"),
    ("audit", "audit"),
    ("playbooks", "playbooks"),
    ("report", "report"),
    ("assets", "assets"),
    ("demo", "demo"),
    ("cluster", "cluster"),
]


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs (or --help lists it),
    so `citysoc search --count` does not pay for importing the web server."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, _attr in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module, attr in COMMANDS:
            if module == cmd_name:
                return getattr(importlib.import_module(f"citysoc.commands.{module}"), attr)
        return None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="citysoc")
def main() -> None:
    """citysoc: the smart city's security operations center (SIEM + SOAR).

    Data lives in $CITYSOC_DATA (default ./data); settings come from citysoc.yml
    and CITYSOC_* environment variables.
    """
    import os

    # Everything citysoc writes (databases, their WAL files, reports, caches, keys) is
    # the SOC's own: no group or world access, whatever the caller's umask.
    os.umask(0o077)



if __name__ == "__main__":  # pragma: no cover
    main()
