"""The gateway's HTTP routes (aiohttp): events in, verdicts out; the contract and its docs.

aiohttp because a request mostly waits for the broker's acknowledgements: one event loop holds
hundreds of waiting requests without a thread each, and its C parser keeps a single-event request
cheap. The CPU work (the judgement) runs on the loop, as it would under the GIL in threads anyway.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from fupin import contract
from fupin.config import Settings
from producers.gateway.auth import AuthError, authorize
from producers.gateway.body import BodyError
from producers.gateway.ingest import Busy, DeliveryFailed, Ingest
from producers.gateway.openapi import document

log = logging.getLogger("fupin.gateway")
INGEST: web.AppKey[Ingest] = web.AppKey("ingest", Ingest)
#: What the access log shows: never a header (the token is one), never a body.
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'

_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fupin gateway API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/docs.js"></script>
</body></html>
"""
_DOCS_JS = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});\n'
_DOCS_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}


def swagger_ui_dir() -> Path:
    """Swagger UI's files as the installed swagger-ui-py package ships them (no CDN)."""
    return Path(str(resources.files("swagger_ui") / "static"))


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers, content_type="application/json")


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": reason}, status, headers)


@web.middleware
async def json_errors(request: web.Request, handler):  # noqa: ANN001, ANN201
    """aiohttp's own answers (404, 405, 413 of its reader) as JSON errors too, like ours."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return _error(exc.status, exc.reason or "error", headers)


def make_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.gateway_max_bytes, middlewares=[json_errors])
    openapi = orjson.dumps(document(settings))
    max_bytes = settings.gateway_max_bytes

    async def startup(app: web.Application) -> None:
        ingest = Ingest(settings, asyncio.get_running_loop())
        await asyncio.get_running_loop().run_in_executor(None, ingest.warm_up)
        app[INGEST] = ingest

    async def cleanup(app: web.Application) -> None:
        if INGEST in app:
            await asyncio.get_running_loop().run_in_executor(None, app[INGEST].close)

    async def post_events(request: web.Request) -> web.Response:
        try:
            department = authorize(settings, request.headers.get("Authorization"))
        except AuthError as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="fupin"'} if exc.status == 401 else None
            return _error(exc.status, str(exc), headers)
        if request.content_length is not None and request.content_length > max_bytes:
            return _error(413, f"the body has {request.content_length} bytes; at most {max_bytes} (gateway_max_bytes)")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the body is larger than {max_bytes} bytes (gateway_max_bytes)")
        try:
            outcome = await request.app[INGEST].publish(department, raw, request.headers.get("Content-Type", ""))
        except BodyError as exc:
            return _error(exc.status, exc.reason)
        except Busy as exc:
            return _error(429, exc.reason, {"Retry-After": str(exc.retry_after)})
        except DeliveryFailed as exc:
            return _error(503, str(exc), {"Retry-After": "1"})
        counts = outcome.counts
        return _json({"request_id": outcome.request_id, "accepted": counts["accepted"],
                      "duplicate": counts["duplicate"], "rejected": counts["rejected"],
                      "events": outcome.verdicts})

    async def list_schemas(request: web.Request) -> web.Response:
        return _json({"event_types": [{"event_type": t, "versions": list(v)}
                                      for t, v in sorted(contract.EVENT_TYPES.items())]})

    async def get_schema(request: web.Request) -> web.Response:
        event_type, version = request.match_info["event_type"], request.match_info["version"]
        versions = contract.EVENT_TYPES.get(event_type, ())
        if not (version.isascii() and version.isdigit() and len(version) < 10) or int(version) not in versions:
            known = f"versions {', '.join(map(str, versions))}" if versions else "no such event type"
            return _error(404, f"no schema for {event_type[:80]!r} version {version[:20]!r} ({known})")
        return _json(contract.event_schema(event_type, int(version)))

    async def get_openapi(request: web.Request) -> web.Response:
        return web.Response(body=openapi, content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        ingest = request.app.get(INGEST)
        return _json({"status": "ok", "in_flight": ingest.in_flight if ingest else 0,
                      "remembered": len(ingest.index) if ingest else 0})

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=_DOCS_HTML, content_type="text/html")

    ui = swagger_ui_dir()

    async def docs_asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "docs.js":
            return web.Response(text=_DOCS_JS, content_type="text/javascript")
        if name not in _DOCS_ASSETS:
            raise web.HTTPNotFound(reason="no such file")
        return web.FileResponse(ui / name, headers={"Content-Type": _DOCS_ASSETS[name]})

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_post("/v1/events", post_events)
    app.router.add_get("/v1/schemas", list_schemas)
    app.router.add_get("/v1/schemas/{event_type}/{version}", get_schema)
    app.router.add_get("/openapi.json", get_openapi)
    app.router.add_get("/health", health)
    app.router.add_get("/docs", docs)
    app.router.add_get("/docs/static/{name}", docs_asset)
    return app


class GatewayServer:
    """The gateway on a host and port (0 = any free one), for ``fupin gateway`` and the tests."""

    def __init__(self, settings: Settings, host: str | None = None, port: int | None = None) -> None:
        self.settings = settings
        self.host = host or settings.gateway_host
        self.port = port if port is not None else (settings.gateway_port or 0)
        self.app = make_app(settings)
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=log, access_log_format=ACCESS_LOG_FORMAT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the port picked when 0
        return self.url

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
