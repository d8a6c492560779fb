"""Heartbeats: every long-running process says in its own pid file how it is doing.

The broker's end offsets cannot tell lag (tansu's are wrong), so each process reports what it
knows itself: whether it is paused and why, how much it holds unfinished (``pending``), when it
last finished work (``last_progress_at``) and when it last found nothing waiting
(``caught_up_at``). ``fupin status`` judges each one with :func:`assess`; one rule for all.

A pid file is JSON: what the process records about itself (``pid``, ``url``, …), plus
``heartbeat`` (its own state), ``updated_at`` (wall clock of the write) and, for the warehouse
service, ``sink`` (the sink thread's state, in the same shape).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal, NamedTuple

#: A pid file not rewritten for this long while its process lives: the process does not respond.
STALE_S = 15.0
#: Work waiting and nothing finished for this long: stalled.
STALL_S = 30.0
#: Work waiting and not caught up for this long: lagging (working through a backlog).
LAG_S = 10.0

#: What a process says of itself.
State = Literal["running", "paused", "stopping", "failed"]


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Replace the file atomically: a reader sees the old document or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, default=str))
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def beat(
    state: State = "running",
    reason: str | None = None,
    pending: int = 0,
    last_progress_at: float | None = None,
    caught_up_at: float | None = None,
    **counts: Any,
) -> dict[str, Any]:
    """One heartbeat (a process's own state) in the shape :func:`assess` reads."""
    return {
        "state": state,
        "reason": reason,
        "pending": pending,
        "last_progress_at": last_progress_at,
        "caught_up_at": caught_up_at,
        "counts": counts,
    }


class PidFile:
    """A process's own pid file, rewritten with its heartbeat; removed when the process ends cleanly."""

    def __init__(self, path: Path, **record: Any) -> None:
        self.path = path
        self.record = {"pid": os.getpid(), "started_at": time.time(), **record}
        self._lock = threading.Lock()
        self._removed = False

    def write(
        self, heartbeat: dict[str, Any] | None = None, updated_at: float | None = None, **sections: Any
    ) -> None:
        """Rewrite the file; ``updated_at``: when the process last showed life (default: now)."""
        doc = {
            **self.record,
            "updated_at": updated_at or time.time(),
            "heartbeat": heartbeat or beat(),
            **sections,
        }
        with self._lock, contextlib.suppress(OSError):  # a full disk must not stop the process
            if not self._removed:
                write_json(self.path, doc)

    def remove(self) -> None:
        """Remove the file if it is still this process's own (a newer process may have replaced it)."""
        with self._lock:
            self._removed = True
            doc = read_json(self.path)
            if doc is not None and doc.get("pid") == os.getpid():
                with contextlib.suppress(OSError):
                    self.path.unlink()


class Assessment(NamedTuple):
    #: alive | lagging | paused | stalled | not responding | stopping | failed | dead
    state: str
    reason: str | None
    #: Something an operator must look at: ``fupin status`` exits non-zero.
    stuck: bool


def assess(heartbeat: dict[str, Any] | None, alive: bool, updated_at: float | None,
           now: float | None = None) -> Assessment:  # fmt: skip
    """Judge one component from its heartbeat, whether its process lives, and when it last wrote."""
    now = time.time() if now is None else now
    if not alive:
        return Assessment("dead", "the process is gone", True)
    if heartbeat is None:
        return Assessment("alive", None, False)
    if updated_at is not None and now - updated_at > STALE_S:
        return Assessment("not responding", f"no heartbeat for {now - updated_at:.0f} s", True)
    state, reason = heartbeat.get("state"), heartbeat.get("reason")
    if state == "paused":
        return Assessment("paused", reason or "paused", True)
    if state == "failed":
        return Assessment("failed", reason or "failed", True)
    if state == "stopping":
        return Assessment("stopping", reason, False)
    pending = heartbeat.get("pending") or 0
    if pending:
        progress = heartbeat.get("last_progress_at") or updated_at or now
        if now - progress > STALL_S:
            return Assessment("stalled", f"{pending} waiting, no progress for {now - progress:.0f} s", True)
        caught_up = heartbeat.get("caught_up_at")
        if caught_up is None or now - caught_up > LAG_S:
            return Assessment("lagging", f"{pending} waiting (working through a backlog)", False)
    return Assessment("alive", None, False)
