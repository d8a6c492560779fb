"""The running gateway's record (``<data_dir>/gateway.json``): for `fupin up`, `status` and `down`.

`fupin up` starts ``fupin gateway serve`` detached when ``gateway_port`` is set, as it starts the
warehouse service; the gateway writes its own pid and URL once it listens.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fupin.config import Settings

MARK = "gateway"


def record_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "gateway.json"


def write_record(settings: Settings, url: str) -> None:
    path = record_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "url": url}) + "\n")
    tmp.replace(path)


def remove_record(settings: Settings) -> None:
    with contextlib.suppress(OSError, ValueError):
        if json.loads(record_file(settings).read_text()).get("pid") == os.getpid():
            record_file(settings).unlink()


def _record(settings: Settings) -> dict[str, Any] | None:
    try:
        return json.loads(record_file(settings).read_text())
    except (OSError, ValueError):
        return None


def gateway_url(settings: Settings) -> str | None:
    """URL of the running gateway of this data dir, or None."""
    from fupin.stack import pid_alive

    info = _record(settings)
    return info.get("url") if info and pid_alive(info.get("pid")) else None


def start_gateway(settings: Settings, bootstrap_servers: str, log_path: Path, timeout: float) -> dict[str, Any] | None:
    """Start `fupin gateway serve` detached when ``gateway_port`` is set; None when it is not."""
    from fupin.stack import StackError, http_json, log_tail, stop_process

    if settings.gateway_port is None:
        return None
    env = dict(os.environ)
    env.update(FUPIN_BROKER_BOOTSTRAP=bootstrap_servers, FUPIN_DATA_DIR=str(Path(settings.data_dir).resolve()),
               FUPIN_MODE="embedded")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fupin.cli", "gateway", "serve"], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"the gateway exited with code {proc.returncode}; {log_path} ends with:\n"
                             f"{log_tail(log_path)}")
        info = _record(settings)
        if info and info.get("pid") == proc.pid:
            with contextlib.suppress(OSError, ValueError):
                http_json(info["url"] + "/health", timeout=2.0)
                return {"pid": proc.pid, "url": info["url"], "log": str(log_path)}
        time.sleep(0.2)
    stop_process(proc.pid, MARK, timeout=10.0)
    raise StackError(f"the gateway did not answer within {timeout:.0f}s; {log_path} ends with:\n{log_tail(log_path)}")


def stop_gateway(state: dict[str, Any], timeout: float) -> list[str]:
    """Stop the gateway `fupin up` recorded in stack.json (before the broker: it flushes into it)."""
    from fupin.stack import stop_process

    gw = state.get("gateway") or {}
    if not gw.get("pid"):
        return []
    return [f"gateway pid {gw['pid']}: {stop_process(gw['pid'], MARK, timeout)}"]
