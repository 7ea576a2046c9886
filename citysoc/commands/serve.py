"""``citysoc serve``: the whole SOC in one process (API, console, collectors, pipeline, scheduler)."""
from __future__ import annotations

import asyncio
import logging

import click

from citysoc.commands._common import config_option, err, load
from citysoc.runtime import run_server
from citysoc.wiring import FormatConfigError, check_formats


@click.command()
@click.option("--host", envvar="CITYSOC_SERVER__HOST", help="API/console address [default: 127.0.0.1].")
@click.option("--port", type=int, envvar="CITYSOC_SERVER__PORT", help="API/console port [default: 8000].")
@click.option("--syslog-port", type=int, envvar="CITYSOC_SYSLOG__PORT", help="Syslog UDP+TCP port [default: 5514].")
@click.option("--no-syslog", is_flag=True, help="Do not start the syslog listeners.")
@click.option("--roles", help="With bus.backend nats: this node's roles, comma-separated "
              "(collector,detector,writer,api) [default: all, or bus.roles].")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
@config_option
def serve(host: str | None, port: int | None, syslog_port: int | None, no_syslog: bool, roles: str | None,
          log_level: str, config: str | None) -> None:
    """Run citysoc: API and console on http://HOST:PORT, syslog collectors, pipeline, scheduler.

    /healthz answers 200 once every part is ready. Stop with Ctrl-C (SIGINT) or SIGTERM:
    what was accepted is stored before exit.
    """
    settings = load(config, server__host=host, server__port=port, syslog__port=syslog_port,
                    syslog__enabled=False if no_syslog else None,
                    bus__roles=[r.strip() for r in roles.split(",") if r.strip()] if roles else None)
    try:
        check_formats(settings)
    except FormatConfigError as exc:
        raise click.ClickException(f"citysoc.yml: {exc}") from exc
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run_server(settings, log_level=log_level))
    except OSError as exc:
        raise click.ClickException(f"{exc}; is another citysoc (or another program) using the port? "
                                   f"Choose others with --port / --syslog-port") from exc
    except KeyboardInterrupt:
        err.print("stopped")
