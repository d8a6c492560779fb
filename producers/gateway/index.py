"""The events the gateway has had acknowledged, for its ``duplicate`` verdict.

Why an index of its own and not the warehouse: a department resends when it got no answer, i.e.
moments after the first try, before the sink has landed the event; the answer must be exact then,
and must not depend on the warehouse being up or on its lag. So the gateway remembers what the
broker acknowledged: (household_id, event_id) -> :func:`fupin.validity.fingerprint`, the scope
and content identity of the one judgement. It is bounded (the oldest are forgotten past
``gateway_index_size``) and persistent (an append-only file under the data dir, compacted when it
grows twice the bound), one per broker life: a restarted memory-only broker has lost what it held,
so nothing it lost may be answered ``duplicate``. What falls out of the window, or came by another
path (``fupin publish``), is accepted again; the streams and the sink still count it once.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from pathlib import Path

from fupin.config import Settings


def index_path(settings: Settings) -> Path:
    from producers.importers import broker_incarnation

    life = hashlib.sha256(f"{broker_incarnation(settings)}|{settings.topic_prefix}".encode()).hexdigest()[:16]
    return Path(settings.data_dir) / "gateway" / "accepted" / f"{life}.log"


def event_key(household_id: str, event_id: str) -> str:
    return f"{household_id} {event_id}"


class AcceptedIndex:
    """event key -> fingerprint, oldest first; lines ``<household_id> <event_id> <fingerprint>``."""

    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.capacity = capacity
        self._fps: dict[str, str] = {}
        self._order: deque[str] = deque()  # keys, oldest first: evicting is O(1)
        self._lines = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("r", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    key, _, fp = line.rstrip("\n").rpartition(" ")
                    if key and fp:
                        if key not in self._fps:
                            self._order.append(key)
                        self._fps[key] = fp
                        self._lines += 1
            self._evict()
        self._fh = path.open("a", encoding="utf-8")
        if self._lines > 2 * capacity:
            self._compact()

    def get(self, key: str) -> str | None:
        return self._fps.get(key)

    def __len__(self) -> int:
        return len(self._fps)

    def add_many(self, entries: list[tuple[str, str]]) -> None:
        """Remember acknowledged events (written through to the file before the answer is sent)."""
        if not entries:
            return
        fps, order = self._fps, self._order
        for key, fp in entries:
            if key not in fps:
                order.append(key)
            fps[key] = fp
        self._fh.write("".join(f"{key} {fp}\n" for key, fp in entries))
        self._fh.flush()
        self._lines += len(entries)
        self._evict()
        if self._lines > 2 * self.capacity:
            self._compact()

    def _evict(self) -> None:
        fps, order = self._fps, self._order
        while len(order) > self.capacity:
            del fps[order.popleft()]

    def _compact(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write("".join(f"{key} {self._fps[key]}\n" for key in self._order))
        self._fh.close()
        tmp.replace(self.path)
        self._fh = self.path.open("a", encoding="utf-8")
        self._lines = len(self._fps)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
