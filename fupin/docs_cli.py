"""`fupin docs`: the dbt docs site and the Great Expectations Data Docs, served on loopback.

Both are built by ``fupin build`` (dbt docs generate, the checkpoint's Data Docs); this command
builds what is missing, checks that no page loads anything from the network, and serves both
from one loopback port: ``/dbt/`` (dbt's site, which fetches its manifest and catalog, so it
needs a server, not a file) and ``/data-docs/``. ``dbt/static_index.html`` is the one-file
variant that also opens from disk. While it serves, ``<data_dir>/docs.json`` records its pid and
URL, so that ``fupin demo --keep`` can leave it running and ``fupin down`` stop it.
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import sys
import threading
from pathlib import Path

import click

from fupin.cli import settings_from


def docs_file(settings) -> Path:
    """The serving docs process's own record: pid and base URL."""
    return Path(settings.data_dir) / "docs.json"


def sites(settings) -> dict[str, Path]:
    from expectations.checkpoint import data_docs_dir
    from fupin.build import dbt_dir

    return {"dbt": dbt_dir(settings) / "target", "data-docs": Path(data_docs_dir(settings)).resolve()}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves /dbt/… and /data-docs/… from their directories; nothing else."""

    roots: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        head, _, rest = path.lstrip("/").partition("/")
        root = self.roots.get(head)
        if root is None:
            return str(Path("/nonexistent"))
        self.directory = str(root)
        return super().translate_path("/" + rest)

    def do_GET(self) -> None:  # noqa: N802
        if self.path in ("/", ""):
            body = "".join(f'<p><a href="/{name}/">{name}</a></p>' for name in self.roots).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def serve(roots: dict[str, Path], port: int = 0) -> http.server.ThreadingHTTPServer:
    """A loopback server of the sites (started in a thread); ``server_address`` has its port."""
    handler = functools.partial(type("Handler", (_Handler,), {"roots": roots}))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@click.command("docs")
@click.option("--port", default=8580, show_default=True, help="Loopback port (0: any free one).")
@click.option("--no-serve", is_flag=True, help="Build what is missing and print the paths; do not serve.")
@click.option("--date", "as_of_date", help="With a build: reference date D (default: the latest occurred_at).")
@click.pass_context
def docs(ctx: click.Context, port: int, no_serve: bool, as_of_date: str | None) -> None:
    """Serve the dbt docs and the Data Docs on loopback (building them first if missing), offline."""
    from expectations.offline import external_urls, make_offline

    settings = settings_from(ctx)
    roots = sites(settings)
    if not (roots["dbt"] / "index.html").exists() or not (roots["data-docs"] / "index.html").exists():
        from fupin.build import build

        click.echo("docs not built yet: running 'fupin build' first", err=True)
        ctx.invoke(build, as_of_date=as_of_date, cutoff=None, full_refresh=False, no_check=False, verbose=False)
    make_offline(roots["data-docs"])
    remaining = external_urls(roots["data-docs"])
    if remaining:
        raise click.ClickException(f"the Data Docs still load from the network: {remaining}")
    click.echo(f"dbt docs:   {roots['dbt'] / 'index.html'} (one-file variant: {roots['dbt'] / 'static_index.html'})")
    click.echo(f"Data Docs:  {roots['data-docs'] / 'index.html'}")
    if no_serve:
        return
    from fupin.heartbeat import read_json, write_json

    try:
        httpd = serve(roots, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve on 127.0.0.1:{port} ({exc.strerror}): pass --port 0 for a free one"
        ) from exc
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    record = docs_file(settings)
    write_json(record, {"pid": os.getpid(), "url": base})
    click.echo(f"serving on loopback: {base}/dbt/  and  {base}/data-docs/  (Ctrl-C stops)")
    # SIGTERM (`fupin down`) ends it as Ctrl-C does: through the finally, which removes the record
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()
        if (read_json(record) or {}).get("pid") == os.getpid():
            record.unlink(missing_ok=True)
