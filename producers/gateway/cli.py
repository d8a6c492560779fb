"""`fupin gateway`: serve the HTTP gateway (tokens: `fupin token create --role department:<name>`)."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from fupin.cli import settings_from


@click.group(invoke_without_command=True)
@click.pass_context
def gateway(ctx: click.Context) -> None:
    """HTTP gateway for departments without a Kafka client (serves when no subcommand is given)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@gateway.command()
@click.option("--host", help="Listen address (default: setting gateway_host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: setting gateway_port, else any free one).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve POST /v1/events, the contract's schemas, /openapi.json and /docs until SIGTERM."""
    from producers.gateway.app import GatewayServer
    from producers.gateway.ingest import tune_gc
    from producers.gateway.process import remove_record, write_record

    settings = settings_from(ctx)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def run() -> None:
        server = GatewayServer(settings, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            url = await server.start()
        except Exception as exc:  # the broker or the topics are not there: say so, exit non-zero
            await server.stop()
            raise click.ClickException(f"the gateway could not start: {exc}") from exc
        tune_gc()
        write_record(settings, url)
        click.echo(f"gateway: {url} (docs {url}/docs)", err=True)
        try:
            await stop.wait()
        finally:
            remove_record(settings)
            await server.stop()

    asyncio.run(run())
