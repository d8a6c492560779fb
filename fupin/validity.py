"""The one validity judgement (events.md, "Validity: one judgement, everywhere").

Every reader of the input topics (the stream workers, the sink, a rebuild's check, the gateway)
calls :func:`judge` on a message's key and value, so that the event store and the live state never
disagree about which events exist. It applies, in this order (the first failure is the reason):

1. a value at all; UTF-8 JSON (:mod:`fupin.contract` decoding);
2. no object repeats a key; no string holds a control character other than tab, LF and CR;
3. ``schema_version`` written as an integer literal;
4. the contract: the envelope's and the payload's JSON Schema, calendar dates, semantic checks;
5. the topic's department; the Kafka key equal to ``household_id``;
6. every date and date-time within 1900-01-01 … 2299-12-31; ``occurred_at`` at most one day later
   than ``recorded_at``;
7. no string holding a raw identifier (:mod:`fupin.privacy`), except the fields whose format the
   contract fixes.

The rule on conflicting duplicates (an ``event_id`` already stored with other content) needs
what a component has stored; :func:`fingerprint` and :func:`conflict_reason` give every
component the same content identity and the same words.

Speed: a valid message pays for the contract (compiled JSON Schema) and a few byte scans; the
exact (slower) checks run only when a scan says they might fail: a repeated key is possible only
when the count of ``":`` differs from the members parsed, a control character or a disguised
digit only when the message holds a backslash, an identifier only beside a run of 11 digits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import orjson

from fupin import contract, privacy
from fupin.contract import ContractError
from fupin.timeutil import parse_instant

#: Dates and date-times must lie within these years (inclusive).
MIN_YEAR, MAX_YEAR = 1900, 2299
#: How much later than its recording a fact may have occurred (clock skew, time zones).
RECORDING_SLACK = timedelta(days=1)
#: Fields whose format the contract fixes: not checked for raw identifiers.
FIXED_FORMAT_FIELDS = privacy.EXEMPT_FIELDS
#: Control characters a string may hold.
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_DATE_PATTERNS = frozenset(
    contract.envelope_schema()["properties"][name]["pattern"] for name in ("occurred_at", "recorded_at")
)


class Invalid(ContractError):
    """A message the platform refuses; ``reason`` says why (never echoing a raw identifier).

    ``field``: the path of the string that holds a raw identifier, when that is the reason (a
    producer names the column it came from).
    """

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


# --------------------------------------------------------------------------------------------
# Exact checks, run when a cheap scan says they might fail


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise Invalid(f"repeated key {privacy.redact(key)[0]!r} in a JSON object")
        seen.add(key)
    return dict(pairs)


def _members(value: Any) -> int:
    """How many object members ``value`` holds, at every depth (no generators: a hot path)."""
    count = 0
    if type(value) is dict:
        count = len(value)
        for v in value.values():
            if type(v) is dict or type(v) is list:
                count += _members(v)
    elif type(value) is list:
        for v in value:
            if type(v) is dict or type(v) is list:
                count += _members(v)
    return count


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{{key}}" if path else "{key}", k
            yield from _strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _control_error(doc: Any) -> str | None:
    for path, text in _strings(doc):
        for ch in text:
            if (ch < " " or "\x7f" <= ch <= "\x9f") and ch not in _ALLOWED_CONTROLS:
                return f"{path}: holds the control character U+{ord(ch):04X}"
    return None


# --------------------------------------------------------------------------------------------
# Dates


@cache
def _date_paths(event_type: str, version: int) -> tuple[tuple[str, ...], ...]:
    """Paths (keys, '*' for array items) of the payload's dates, from the schema's date patterns."""
    found: list[tuple[str, ...]] = []

    def walk(schema: dict, path: tuple[str, ...]) -> None:
        if schema.get("pattern") in _DATE_PATTERNS or (
            schema.get("pattern", "").startswith("^[0-9]{4}-(0[1-9]|1[0-2])-")
        ):
            found.append(path)
        for name, sub in schema.get("properties", {}).items():
            walk(sub, (*path, name))
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], (*path, "*"))

    walk(contract.load_schema(event_type, version), ())
    return tuple(found)


def _values_at(doc: Any, path: tuple[str, ...], where: str = "payload") -> Iterator[tuple[str, Any]]:
    if not path:
        yield where, doc
        return
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from _values_at(item, rest, f"{where}[{i}]")
    elif isinstance(doc, dict) and head in doc:
        yield from _values_at(doc[head], rest, f"{where}.{head}")


_FIRST_YEAR, _LAST_YEAR = f"{MIN_YEAR:04d}", f"{MAX_YEAR:04d}"


def _year_error(where: str, text: str) -> str | None:
    # The contract's patterns fix a four-digit year first: comparing text is comparing years.
    if not (_FIRST_YEAR <= text[:4] <= _LAST_YEAR):
        return f"{where}: {text!r} lies outside {MIN_YEAR}-01-01 … {MAX_YEAR}-12-31"
    return None


_INSTANTS: dict[str, datetime] = {}


def _instant(text: str) -> datetime:
    """``parse_instant``, remembered: dates and batch recording times repeat."""
    dt = _INSTANTS.get(text)
    if dt is None:
        if len(_INSTANTS) > 100_000:
            _INSTANTS.clear()
        dt = _INSTANTS[text] = parse_instant(text)
    return dt


def _time_error(env: dict) -> str | None:
    occurred, recorded = env["occurred_at"], env["recorded_at"]
    if not (_FIRST_YEAR <= occurred[:4] <= _LAST_YEAR and _FIRST_YEAR <= recorded[:4] <= _LAST_YEAR):
        return _year_error("occurred_at", occurred) or _year_error("recorded_at", recorded)
    for path in _date_paths(env["event_type"], env["schema_version"]):
        for where, text in _values_at(env["payload"], path):
            if isinstance(text, str) and (error := _year_error(where, text)):
                return error
    if _instant(occurred) - _instant(recorded) > RECORDING_SLACK:
        return (
            f"occurred_at: {occurred!r} is more than one day after recorded_at {recorded!r} "
            "(a fact is not recorded before it happens)"
        )
    return None


# --------------------------------------------------------------------------------------------
# The judgement


def _parse(value: bytes) -> Any:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"not valid JSON: {exc}") from None
    except TypeError:
        raise Invalid(f"not valid JSON: expected bytes, got {type(value).__name__}") from None
    # A key may repeat (orjson keeps the last). Not when the bytes are orjson's own writing of the
    # document (as the SDK and the gateway send), nor when the key separators are as many as the
    # members; otherwise parse again, keeping every member.
    if (
        type(doc) is dict
        and orjson.dumps(doc) != value
        and value.count(b'":') != _members(doc)
    ):
        try:
            json.loads(value, object_pairs_hook=_no_repeated_keys)
        except Invalid:
            raise
        except ValueError as exc:  # pragma: no cover - orjson accepted it
            raise Invalid(f"not valid JSON: {exc}") from None
    return doc


def judge(value: bytes | None, key: bytes | None, department: str | None = None) -> dict:
    """The envelope of a valid message; raises :class:`Invalid` with the reason otherwise.

    ``key`` is the Kafka key (``None`` when the message has none; pass the household id's bytes
    where there is no Kafka key, as a file import does); ``department``, the department whose topic
    the message came from (``None``: not from a department topic).
    """
    if value is None:
        raise Invalid("message has no value (tombstone)")
    if type(value) is not bytes:
        value = bytes(value)
    doc = _parse(value)
    # A control character can only come as an escape (JSON refuses raw ones in strings).
    return _judge_document(doc, key, department, controls=b"\\" in value)


def judge_envelope(envelope: Any, key: bytes | None, department: str | None = None) -> dict:
    """:func:`judge` for an envelope built in memory (a producer's, before it is serialised).

    No bytes to read: every string is checked for control characters, and no key can repeat.
    """
    return _judge_document(envelope, key, department, controls=True)


def _judge_document(doc: Any, key: bytes | None, department: str | None, controls: bool) -> dict:
    if controls and (error := _control_error(doc)):
        raise Invalid(error)
    if isinstance(doc, dict):
        version = doc.get("schema_version")
        if "schema_version" in doc and (not isinstance(version, int) or isinstance(version, bool)):
            raise Invalid(f"schema_version: {privacy.redact(str(version))[0]!r} is not an integer literal")
    try:
        env = contract.validate(doc)
    except ContractError as exc:
        raise Invalid(privacy.redact(exc.reason)[0]) from None
    if department is not None and env["department"] != department:
        raise Invalid(f"department: {env['department']!r} does not belong on the topic of {department!r}")
    if key is None:
        raise Invalid("message key: missing (it must be the envelope's household_id)")
    if type(key) is not bytes:
        key = bytes(key)
    if key != env["household_id"].encode():
        shown = key.decode("utf-8", "replace")
        raise Invalid(
            f"message key: {privacy.redact(shown)[0][:60]!r} is not the envelope's household_id "
            f"{env['household_id']!r}"
        )
    if error := _time_error(env):
        raise Invalid(error)
    if found := _identifier_error(env):
        where, kind = found
        raise Invalid(f"{where}: holds what looks like a raw identifier ({kind.replace('_', ' ')})", where)
    return env


def _identifier_error(env: dict) -> tuple[str, str] | None:
    """(path, kind) of the first string that holds a raw identifier, outside the fixed-format fields.

    The envelope's free strings are ``source_system`` and the payload's (decoded, so an escape
    cannot hide a digit); an identifier needs 11 characters at least.
    """
    for where, text in _long_strings(env["payload"], "payload"):
        if kind := privacy.first_kind(text):
            return where, kind
    text = env["source_system"]
    if len(text) >= 11 and (kind := privacy.first_kind(text)):
        return "source_system", kind
    return None


def _long_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of the strings of at least 11 characters, skipping the fixed-format fields."""
    if type(value) is dict:
        for k, v in value.items():
            if type(v) is str:
                if len(v) >= 11 and k not in FIXED_FORMAT_FIELDS:
                    yield f"{path}.{k}", v
            elif type(v) is dict or type(v) is list:
                yield from _long_strings(v, f"{path}.{k}")
    elif type(value) is list:
        for i, v in enumerate(value):
            if type(v) is str:
                if len(v) >= 11:
                    yield f"{path}[{i}]", v
            elif type(v) is dict or type(v) is list:
                yield from _long_strings(v, f"{path}[{i}]")


# --------------------------------------------------------------------------------------------
# Conflicting duplicates


def fingerprint(env: dict) -> str:
    """The content identity of an envelope: equal for the same event however it was serialised.

    Keys sorted, an absent ``person_id`` the same as a null one; the times as written (a rebuild
    replays them as they were).
    """
    if "person_id" not in env:  # the canonical form always has it (most envelopes do: no copy)
        env = {**env, "person_id": None}
    return hashlib.blake2b(orjson.dumps(env, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def conflict_reason(event_id: str, first_fingerprint: str) -> str:
    """The reason of a conflicting duplicate, naming the first (stored) event by its content."""
    return (
        f"conflicting duplicate: event_id {event_id} is already stored with other content "
        f"(the first, fingerprint {first_fingerprint}, stays)"
    )


# --------------------------------------------------------------------------------------------
# Dead letters


def dead_letter_value(raw: bytes | None) -> tuple[bytes | None, bool]:
    """What a dead letter may keep of a message: the bytes with raw-identifier spans redacted."""
    if raw is None:
        return None, False
    redacted, count = privacy.redact_bytes(bytes(raw))
    return redacted, count > 0
