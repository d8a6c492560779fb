"""``fupin dashboard``: the dashboard's web server (pages, static files, named data endpoints).

Every request needs a token (``fupin token create --role dashboard``), as a bearer header or the
cookie that ``/login?token=…`` sets: without one 401, a role that may not 403 (the household page
wants ``analyst`` or ``operator``). The server reads with tokens of its own, one per role, issued
at start: ``dashboard`` for every panel, ``analyst`` for the household page, so that the engine's
read-only path (the warehouse service's ``/query``, or a read-only chdb session when no service
runs) decides what may be read. Nothing is read outside :mod:`warehouse.dashboard.panels`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import orjson

from fupin import auth
from fupin.config import Settings, SettingsError
from fupin.heartbeat import PidFile, beat, read_json
from fupin.stack import dashboard_file, pid_alive, service_url
from warehouse.client import WarehouseError
from warehouse.dashboard import panels
from warehouse.dashboard.public import suppress
from warehouse.readonly import ReadOnlyRefused

log = logging.getLogger("fupin.dashboard")

STATIC = Path(__file__).parent / "static"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
COOKIE = "fupin_token"
#: Names of the server's own tokens (revoked and issued again at each start).
OWN_TOKENS = {auth.DASHBOARD: "dashboard-server", auth.ANALYST: "dashboard-server-analyst"}
LOGIN_TOKEN = "dashboard-login"
VIEWERS = (auth.DASHBOARD, auth.ANALYST, auth.OPERATOR)
HOUSEHOLD_VIEWERS = (auth.ANALYST, auth.OPERATOR)


def login_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "dashboard.token"


def dashboard_url(settings: Settings) -> str | None:
    """The running dashboard's URL (from its pid file), or None."""
    info = read_json(dashboard_file(settings)) or {}
    return info.get("url") if pid_alive(info.get("pid")) else None


def login_url(settings: Settings) -> str | None:
    """The URL that opens the dashboard logged in with its own dashboard-role token."""
    url = dashboard_url(settings)
    try:
        token = login_file(settings).read_text().strip()
    except OSError:
        return url
    return f"{url}/login?token={quote(token)}" if url else None


class Readers:
    """A reader per role: the warehouse service's API when it runs, else a read-only chdb session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens: dict[str, str] = {}
        for role, name in OWN_TOKENS.items():
            auth.revoke_token(settings, name)
            self.tokens[role] = auth.create_token(settings, role, name=name)[1]

    @contextlib.contextmanager
    def reader(self, role: str) -> Iterator[Any]:
        from warehouse.client import RemoteWarehouse
        from warehouse.readonly import ReadOnlyWarehouse

        s = self.settings
        url = service_url(s) if s.mode == "embedded" else None
        if url:
            yield RemoteWarehouse(
                url,
                s.clickhouse_database,
                timeout=60.0,
                headers={"Authorization": f"Bearer {self.tokens[role]}"},
            )
            return
        if s.mode == "embedded":
            wh = ReadOnlyWarehouse.chdb(s.chdb_data_path, s.clickhouse_database, role)
        else:
            from warehouse.client import open_reader

            wh = open_reader(s, role)
        try:
            yield wh
        finally:
            wh.close()


def _staging_models() -> list[str]:
    return sorted(p.stem for p in (PROJECT_ROOT / "dbt_project" / "models" / "staging").glob("stg_*.sql"))


class Dashboard:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.readers = Readers(settings)
        self.httpd: ThreadingHTTPServer | None = None
        self.pidfile: PidFile | None = None
        self._stopping = threading.Event()

    # -- data ----------------------------------------------------------------------------------
    def endpoint(self, name: str, q: dict[str, str], caller: auth.TokenRecord) -> dict[str, Any]:
        if name == "me":
            return {
                "role": caller.role,
                "name": caller.name,
                "public_min_households": self.settings.public_min_households,
                "endpoints": sorted([*panels.ENDPOINTS, "household", "checkpoint"]),
                "pages": panels.PAGES,
            }
        if name == "household":
            if caller.role not in HOUSEHOLD_VIEWERS:
                raise auth.AuthError(
                    403, f"role {caller.role} may not open a household (analyst or operator)"
                )
            return self.household(panels.household_param(q.get("id")))
        if name == "checkpoint":
            return self.checkpoint()
        if name not in panels.ENDPOINTS:
            raise LookupError(f"no endpoint {name!r}; endpoints: {', '.join(sorted(panels.ENDPOINTS))}")
        fn, role = panels.ENDPOINTS[name]
        with self.readers.reader(role) as reader:
            doc = fn(reader, q)
        if q.get("view") == "public":
            doc = suppress(doc, self.settings.public_min_households)
            doc["public_min_households"] = self.settings.public_min_households
        return doc

    def household(self, hid: str) -> dict[str, Any]:
        """What `fupin household explain` gives (the live workers) and the household's events (staging)."""
        with self.readers.reader(auth.ANALYST) as reader:
            events = panels.household_events(reader, hid, _staging_models())
        live: dict[str, Any] | None = None
        note = None
        try:
            from streams.cli import live_workers

            for info in live_workers(self.settings):
                req = urllib.request.Request(
                    f"{info['url']}/household/{hid}/explain",
                    headers={"Authorization": f"Bearer {self.readers.tokens[auth.ANALYST]}"},
                )
                with (
                    contextlib.suppress(urllib.error.HTTPError),
                    urllib.request.urlopen(req, timeout=5) as resp,
                ):  # noqa: S310
                    live = json.loads(resp.read())
                    break
            else:
                note = "no stream worker runs: the live status is not available"
        except Exception as exc:  # a worker that does not answer: the events still show
            note = f"stream workers: {exc}"
        return {
            "household_id": hid,
            "live": live,
            "note": note,
            "events": {
                "columns": [
                    "occurred_at",
                    "recorded_at",
                    "department",
                    "event_type",
                    "region_code",
                    "event_id",
                ],
                "rows": events,
            },
        }

    def checkpoint(self) -> dict[str, Any]:
        from expectations.checkpoint import data_docs_dir, last_result_file

        doc = read_json(last_result_file(self.settings)) or {}
        index = data_docs_dir(self.settings) / "index.html"
        return {
            "success": doc.get("success"),
            "finished_at": doc.get("finished_at"),
            "critical_failures": len(doc.get("critical_failures") or []),
            "warnings": len(doc.get("warnings") or []),
            "suites": doc.get("suites") or {},
            "data_docs": "/datadocs/index.html" if index.exists() else None,
        }

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, port: int | None = None) -> str:
        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", self.settings.dashboard_port if port is None else port), _handler(self)
        )
        self.httpd.daemon_threads = True
        url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, name="dashboard-http", daemon=True).start()
        if auth.identify(self.settings, _read(login_file(self.settings))) is None:
            auth.revoke_token(self.settings, LOGIN_TOKEN)
            token = auth.create_token(self.settings, auth.DASHBOARD, name=LOGIN_TOKEN)[1]
            auth.write_private(login_file(self.settings), token + "\n")
        self.pidfile = PidFile(dashboard_file(self.settings), url=url)
        self.pidfile.write(beat())
        threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True).start()
        return url

    def _beat_forever(self) -> None:
        while not self._stopping.wait(1.0):
            if self.pidfile:
                self.pidfile.write(beat())

    def stop(self) -> None:
        self._stopping.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self.pidfile:
            self.pidfile.remove()
        for name in OWN_TOKENS.values():
            with contextlib.suppress(Exception):
                auth.revoke_token(self.settings, name)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _query(path: str) -> tuple[str, dict[str, str]]:
    url = urlsplit(path)
    return url.path, dict(parse_qsl(url.query))


def _handler(app: Dashboard):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, code: int, data: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _json(self, code: int, doc: Any) -> None:
            self._send(
                code, orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS), "application/json"
            )

        def _token(self) -> str | None:
            if header := self.headers.get("Authorization"):
                return auth.bearer(header)
            cookie = SimpleCookie(self.headers.get("Cookie") or "")
            return cookie[COOKIE].value if COOKIE in cookie else None

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path, q = _query(self.path)
            try:
                if path == "/login":
                    self._login(q.get("token") or "")
                    return
                caller = auth.authorize(app.settings, f"Bearer {self._token() or ''}", VIEWERS)
                if path.startswith("/api/"):
                    self._json(200, app.endpoint(path[len("/api/") :].strip("/"), q, caller))
                elif path.startswith("/datadocs/"):
                    from expectations.checkpoint import data_docs_dir

                    self._file(data_docs_dir(app.settings), path[len("/datadocs/") :])
                elif path.startswith("/static/"):
                    self._file(STATIC, path[len("/static/") :])
                else:  # every page is the one application; the URL's fragment names page, region and date
                    self._file(STATIC, "index.html")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser went away (a page left while its data was on the way)
            except auth.AuthError as exc:
                if path.startswith("/api/"):
                    self._json(exc.status, {"error": str(exc)})
                else:
                    self._send(exc.status, _login_page(str(exc)), "text/html; charset=utf-8")
            except (panels.BadRequest, ValueError) as exc:
                self._json(400, {"error": str(exc)})
            except LookupError as exc:
                self._json(404, {"error": str(exc)})
            except ReadOnlyRefused as exc:
                self._json(403, {"error": str(exc)})
            except WarehouseError as exc:
                self._json(503, {"error": f"the warehouse could not answer: {exc}"})
            except Exception as exc:
                log.exception("request %s failed", self.path)
                self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

        def _login(self, token: str) -> None:
            record = auth.identify(app.settings, token) if token else None
            if record is None or record.role not in VIEWERS:
                self._send(
                    401,
                    _login_page("no valid dashboard, analyst or operator token"),
                    "text/html; charset=utf-8",
                )
                return
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(303, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})

        def _file(self, root: Path, rel: str) -> None:
            target = (root / rel).resolve()
            if not target.is_relative_to(root.resolve()) or not target.is_file():
                raise LookupError(f"no such file {rel}")
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/javascript", "text/javascript"):
                ctype += "; charset=utf-8"
            self._send(200, target.read_bytes(), ctype)

    return Handler


def _login_page(message: str) -> bytes:
    from html import escape

    return (
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>扶贫 · 登录</title></head><body>"
        f"<p>{escape(message)}</p><form action='/login'><label>令牌 token "
        "<input name='token' type='password' size='50'></label> <button>登录 log in</button></form>"
        "<p>fupin token create --role dashboard</p></body></html>"
    ).encode()


def serve(settings: Settings) -> None:
    """Run the dashboard until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if dashboard_url(settings):
        raise SettingsError(
            f"a dashboard already runs at {dashboard_url(settings)} ({dashboard_file(settings)})"
        )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    app = Dashboard(settings)
    app.start()
    log.info("dashboard at %s", login_url(settings))
    print(f"dashboard: {login_url(settings)}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        t0 = time.monotonic()
        app.stop()
        log.info("dashboard stopped in %.1f s", time.monotonic() - t0)
