"""A request body into its events: one JSON object, a JSON array, or NDJSON (one event a line).

Each event keeps its own bytes, because the one judgement (:func:`fupin.validity.judge`) reads
bytes: a repeated key or a ``1.0`` version is a verdict on that event, not on the request. Only a
body that cannot be cut into events at all (an array that is not JSON, no event) is malformed.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Media types of NDJSON bodies (one JSON document a line).
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines", "application/jsonlines"})
JSON_TYPES = frozenset({"application/json"})
#: Sent by `curl --data-binary` without -H, and by clients that say nothing: the body is sniffed.
SNIFFED_TYPES = frozenset({"", "application/octet-stream", "application/x-www-form-urlencoded", "text/plain"})

#: A parsed document the judgement will refuse anyway (the bytes are not JSON).
UNPARSED: Any = object()
_WS = " \t\n\r"


class BodyError(ValueError):
    """A request that cannot be read as events: ``status`` 400, 413 or 415."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNPARSED


def _too_many(max_events: int) -> BodyError:
    return BodyError(413, f"more than {max_events} events in one request (gateway_max_events)")


def ndjson(body: bytes, max_events: int) -> list[tuple[bytes, Any]]:
    items = []
    for line in body.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        if len(items) == max_events:
            raise _too_many(max_events)
        items.append((line, _loads(line)))
    return items


def _array_slices(body: bytes, max_events: int) -> list[tuple[bytes, Any]]:
    """The elements of a JSON array with their own bytes (the standard library's scanner finds the ends)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"the JSON array is not UTF-8 (byte {exc.start})") from None
    decoder = json.JSONDecoder()
    n = len(text)
    i = len(text) - len(text.lstrip(_WS)) + 1  # past '['
    items: list[tuple[bytes, Any]] = []
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == "]" and not items:
            break
        try:
            doc, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise BodyError(400, f"the body is not a JSON array: {exc.msg} at character {exc.pos}") from None
        if len(items) == max_events:
            raise _too_many(max_events)
        items.append((text[i:end].encode("utf-8", "surrogatepass"), doc))
        i = end
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == ",":
            i += 1
            continue
        if i < n and text[i] == "]":
            break
        raise BodyError(400, f"the body is not a JSON array: expected ',' or ']' at character {i}")
    if text[i + 1:].strip(_WS):
        raise BodyError(400, f"the body is not a JSON array: extra data after character {i}")
    return items


def json_array(body: bytes, max_events: int) -> list[tuple[bytes, Any]]:
    try:
        docs = orjson.loads(body)
    except orjson.JSONDecodeError:
        docs = None
    if isinstance(docs, list):
        if len(docs) > max_events:
            raise _too_many(max_events)
        dumps = orjson.dumps
        parts = [dumps(d) for d in docs]
        # Sent as orjson (or any compact writer) writes it: the elements' bytes are these.
        if body == b"[" + b",".join(parts) + b"]":
            return list(zip(parts, docs, strict=True))
    return _array_slices(body, max_events)


def split(body: bytes, content_type: str, max_events: int) -> list[tuple[bytes, Any]]:
    """(bytes, parsed document or UNPARSED) per event, in order; BodyError when there are none."""
    media = content_type.split(";", 1)[0].strip().lower()
    start = body.lstrip()[:1]
    if media in NDJSON_TYPES:
        items = ndjson(body, max_events)
    elif media in JSON_TYPES or media in SNIFFED_TYPES or media.endswith("+json"):
        if start == b"[":
            items = json_array(body.strip(), max_events)
        elif start == b"{":
            one = body.strip()
            doc = _loads(one)
            # A pretty-printed object is one event; an object that does not parse alone may be NDJSON.
            items = [(one, doc)] if doc is not UNPARSED or media in JSON_TYPES else ndjson(body, max_events)
        elif not start:
            raise BodyError(400, "the body is empty: send an event, a JSON array of events or NDJSON")
        else:
            raise BodyError(400, "the body must be a JSON object (one event), a JSON array or NDJSON")
    else:
        raise BodyError(415, f"unsupported Content-Type {media!r}: use application/json or application/x-ndjson")
    if not items:
        raise BodyError(400, "the request holds no event")
    return items
