"""The judgement of a request's events, without state: in a worker process for a large request.

Cutting a body into events, :func:`fupin.validity.judge` and :func:`fupin.validity.fingerprint`
are two thirds of the gateway's CPU per event and need nothing but the bytes, so a request's
events are judged in a process pool (``gateway_workers``) while the event loop keeps the state
(duplicates, pending sends) and the producer. A small request is judged inline: a round trip to
a worker would cost more than it saves.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from fupin.validity import Invalid, fingerprint, judge
from producers.gateway.body import UNPARSED, BodyError, split
from producers.gateway.index import event_key

#: (raw, key, event key, event_id, fingerprint, value, reason): an event the judgement accepted has
#: no reason, ``value`` to publish and ``raw`` only when its bytes differ from it; a rejected one
#: has its raw bytes (for its dead letter), the event_id only when it is a UUID, and the reason.
Judged = tuple[bytes | None, bytes | None, str | None, str | None, str | None, bytes | None, str | None]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_dumps = orjson.dumps


def shown_id(doc: Any) -> str | None:
    """The event_id to echo for a rejected event: only a UUID, never another value of the department's."""
    eid = doc.get("event_id") if type(doc) is dict else None
    return eid if type(eid) is str and _UUID.fullmatch(eid) else None


def judge_events(department: str, items: list[tuple[bytes, Any]]) -> list[Judged]:
    out: list[Judged] = []
    append = out.append
    for raw, doc in items:
        hid = doc.get("household_id") if doc is not UNPARSED and type(doc) is dict else None
        # HTTP has no Kafka key: the envelope's own household_id stands for it.
        key = hid.encode() if type(hid) is str else None
        try:
            env = judge(raw, key, department)
        except Invalid as exc:
            append((raw, key, None, shown_id(doc), None, None, exc.reason))
            continue
        eid = env["event_id"]
        value = _dumps(env)
        # The original bytes travel back only when they differ from the value (for a dead letter).
        append((None if raw == value else raw, key, event_key(env["household_id"], eid), eid, fingerprint(env),
                value, None))
    return out


def judge_body(department: str, body: bytes, content_type: str, max_events: int) -> list[Judged] | tuple[int, str]:
    """Cut and judge; a body that is no events comes back as (status, reason), which pickles plainly."""
    try:
        items = split(body, content_type, max_events)
    except BodyError as exc:
        return exc.status, exc.reason
    return judge_events(department, items)


def ready() -> bool:
    """A worker's first task: its imports (schemas, compiled validators) done before the first request."""
    return True
