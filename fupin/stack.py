"""The embedded stack's state: what `fupin up` started, and how other commands find it.

`fupin up` records the broker and the warehouse service in ``<data_dir>/stack.json``; the
warehouse service records its own API address in ``<data_dir>/warehouse.json``. Commands
resolve the broker through :func:`bootstrap`, never by guessing ports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fupin.config import Settings, SettingsError


def stack_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "stack.json"


def service_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "warehouse.json"


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(settings: Settings) -> dict[str, Any] | None:
    """The recorded stack if its broker process still runs, else None."""
    path = stack_file(settings)
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if pid_alive(state.get("broker", {}).get("pid")) else None


def bootstrap(settings: Settings) -> str:
    """Kafka bootstrap servers: the setting when given (server mode), else the running embedded broker."""
    if settings.broker_bootstrap:
        return settings.broker_bootstrap
    state = read_state(settings)
    if state is None:
        raise SettingsError(
            "setting 'broker_bootstrap' is not set and no embedded stack runs "
            f"(no live {stack_file(settings)}): run 'fupin up' first"
        )
    return state["broker"]["bootstrap"]


def service_url(settings: Settings) -> str | None:
    """Base URL of the running embedded warehouse service, or None when none runs."""
    path = service_file(settings)
    if settings.mode != "embedded" or not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info.get("url") if pid_alive(info.get("pid")) else None
