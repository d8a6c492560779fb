"""The event contract as one strict regular expression per event type: the sink's fast path.

Why: validating an envelope in Python costs more than reading it from Kafka (orjson + jsonschema-rs
≈ 3.6 µs against kafka-python's ≈ 6 µs), and all Python work shares one core (the GIL). A regular
expression over the whole message runs in chdb's C++ engine (re2, one linear pass, no GIL).

The one rule that keeps the contract's guarantee: **what this filter accepts, ``fupin.contract``
and the sink accept too, with the same values**. It may refuse more: a refused message goes to the
Python path (``warehouse.sink.event_line``), which decides with the contract itself and gives the
dead letter its reason. So the expression describes a narrow, unambiguous form of each event:

- compact JSON, keys in the schema's order, each once; no escapes and only printable ASCII in
  strings, so every string token is its own value and no parser can read it otherwise;
- numbers without exponent and with at most 15 integer digits, bounds as digit patterns;
- the JSON Schema keywords the schemas use (types, enum, const, pattern of a safe character set,
  lengths, bounds, items, anyOf, properties, required, additionalProperties: false); arrays
  with ``uniqueItems`` hold at most one item here; anything else makes a type Python-only
  (:func:`unsupported_types`), as do the types with a semantic check of ``fupin.contract``;
- what ``validate`` adds (real calendar dates) and the sink's own checks (the topic's department,
  years 1900–2299) are SQL beside the expression (:func:`sink_checks`).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fupin import privacy, validity
from fupin.contract import SCHEMA_SET, SEMANTIC_CHECKS
from fupin.topics import DEPARTMENTS

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

#: Keywords that only document.
_DOC = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default"})
_KNOWN = _DOC | {
    "type", "enum", "const", "anyOf", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "uniqueItems",
}  # fmt: skip
#: Characters a string token may hold: printable ASCII but the quote and the backslash.
_SAFE = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}
#: One character of a free string: safe ASCII, or any other code point (ClickHouse's re2 reads
#: UTF-8 characters, and ``isValidUTF8`` holds, so lengths count characters as JSON Schema does).
_FREE_CHAR = r"(?:[ !#-\[\]-~]|[^\x00-\x7f])"
_INT = r"(?:0|[1-9][0-9]{0,14})"


class Unsupported(ValueError):
    """A schema construct this compiler does not translate: its event type stays Python-only."""


def literal(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _text(value: Any) -> str:
    if not isinstance(value, str) or any(ord(c) not in _SAFE for c in value):
        raise Unsupported(f"string {value!r}")
    return re.escape(value)


def _check_tree(items: Any) -> None:
    """Every character the pattern can match is safe; no look-around, back-reference or wildcard."""
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            if arg not in _SAFE:
                raise Unsupported(f"pattern character {chr(arg)!r}")
        elif name == "IN":
            for kind, value in arg:
                if str(kind) == "LITERAL" and value in _SAFE:
                    continue
                if str(kind) == "RANGE" and all(c in _SAFE for c in range(value[0], value[1] + 1)):
                    continue
                raise Unsupported("pattern class outside the safe characters")
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            _check_tree(arg[2])
        elif name == "SUBPATTERN":
            _check_tree(arg[-1])
        elif name == "BRANCH":
            for alt in arg[1]:
                _check_tree(alt)
        else:
            raise Unsupported(f"pattern construct {name}")


def _pattern(schema: dict) -> str:
    pattern = schema["pattern"]
    if not (pattern.startswith("^") and pattern.endswith("$")) or pattern.endswith("\\$"):
        raise Unsupported(f"pattern {pattern!r} not anchored at both ends")
    body = pattern[1:-1]
    tree = sre_parse.parse(body)
    _check_tree(list(tree))
    body = re.sub(r"(?<!\\)\((?!\?)", "(?:", body)  # no capture: re2 matches faster without
    low, high = tree.getwidth()
    lo, hi = schema.get("minLength", 0), schema.get("maxLength")
    if lo <= low and (hi is None or high <= hi):
        return f"(?:{body})"  # the pattern's own lengths are within the bounds
    one = re.fullmatch(r"(\[[^\]\\]*\])\+", body)  # C+ with bounds: C{lo,hi}
    if one and high > (hi or 0):
        return f"{one.group(1)}{{{max(lo, 1)},{'' if hi is None else hi}}}"
    raise Unsupported(f"pattern {pattern!r} with lengths {lo}..{hi}")


def _string(schema: dict) -> str:
    for word in ("enum", "const"):
        if word in schema:
            values = schema[word] if word == "enum" else [schema[word]]
            return '"(?:' + "|".join(_text(v) for v in values) + ')"'
    if "pattern" in schema:
        return '"' + _pattern(schema) + '"'
    lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
    if lo == 0 and hi is None:
        return f'"{_FREE_CHAR}*"'
    return f'"{_FREE_CHAR}{{{lo},{"" if hi is None else int(hi)}}}"'


def _integer(schema: dict) -> str:
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise Unsupported(f"integer enum {values!r}")
        return "(?:" + "|".join(str(v) for v in values) + ")"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None and int(lo) == lo and int(hi) == hi and 0 <= lo <= hi:
        return "(?:" + _digits(str(int(lo)), str(int(hi))) + ")"
    if hi is not None:
        raise Unsupported("integer maximum without a small range")
    if lo is None:
        return f"-?{_INT}"
    if lo == 0:
        return _INT
    if lo == 1:
        return r"[1-9][0-9]{0,14}"
    raise Unsupported(f"integer minimum {lo!r}")


def _digits(lo: str, hi: str) -> str:
    """A regular expression for the decimal integers lo..hi (no sign, no leading zero)."""
    if len(lo) < len(hi):  # split by length: lo..99…9, then 10…0..hi
        return _digits(lo, "9" * len(lo)) + "|" + _digits("1" + "0" * len(lo), hi)
    if lo == hi:
        return lo
    i = next(k for k in range(len(lo)) if lo[k] != hi[k])  # first differing digit
    head, rest = lo[:i], len(lo) - i - 1
    if rest == 0:
        return f"{head}[{lo[i]}-{hi[i]}]"
    if lo[i + 1 :] == "0" * rest and hi[i + 1 :] == "9" * rest:
        return f"{head}[{lo[i]}-{hi[i]}][0-9]{{{rest}}}"
    parts = [_digits(lo, lo[: i + 1] + "9" * rest)]
    if int(hi[i]) - int(lo[i]) > 1:
        parts.append(f"{head}[{int(lo[i]) + 1}-{int(hi[i]) - 1}][0-9]{{{rest}}}")
    parts.append(_digits(hi[: i + 1] + "0" * rest, hi))
    return "|".join(parts)


def _number(schema: dict) -> str:
    if {"enum", "const", "maximum"} & set(schema):
        raise Unsupported("number enum, const or maximum")
    lo = schema.get("minimum")
    sign = "-?" if lo is None else ""
    if lo not in (None, 0):
        raise Unsupported(f"number minimum {lo!r}")
    return f"{sign}{_INT}(?:\\.[0-9]{{1,15}})?"


def _object(schema: dict) -> str:
    if schema.get("additionalProperties") is not False:
        raise Unsupported("an object open to other properties")
    required = set(schema.get("required", ()))
    props: dict = schema.get("properties", {})
    if required - set(props):
        raise Unsupported("a required property without a schema")
    items = [(f'"{_text(name)}":{token(sub)}', name in required) for name, sub in props.items()]

    def seq(rest: list[tuple[str, bool]], first: bool) -> str:
        # The comma goes before every item but the first present one.
        if not rest:
            return ""
        (item, needed), tail = rest[0], rest[1:]
        here = ("" if first else ",") + item
        if needed:
            return here + seq(tail, False)
        if not first:
            return f"(?:{here})?" + seq(tail, False)
        return f"(?:{here}{seq(tail, False)}|{seq(tail, True)})"

    return r"\{" + seq(items, True) + r"\}"


def _array(schema: dict) -> str:
    items = schema.get("items")
    if not isinstance(items, dict):
        raise Unsupported("array without one items schema")
    item = token(items)
    lo, hi = int(schema.get("minItems", 0)), schema.get("maxItems")
    if schema.get("uniqueItems"):
        values = items.get("enum")
        if items.get("type") != "string" or not values or any(set(str(v)) & set(',]"') for v in values):
            # Only arrays of plain enumerated strings are checked for duplicates (:func:`_unique`).
            hi = 1 if hi is None else min(int(hi), 1)  # one item is always unique; more go to Python
            if lo > 1:
                raise Unsupported("uniqueItems with minItems above 1")
    if hi is not None and int(hi) < lo:
        raise Unsupported("maxItems below minItems")
    if hi == 0:
        return r"\[\]"
    more = f"(?:,{item}){{{max(lo - 1, 0)},{'' if hi is None else int(hi) - 1}}}"
    body = f"{item}{more}"
    return rf"\[{body}\]" if lo >= 1 else rf"\[(?:{body})?\]"


def token(schema: Any) -> str:
    """A regular expression for one JSON value valid for ``schema`` (in the narrow form above)."""
    if not isinstance(schema, dict) or not schema:
        raise Unsupported(f"schema {schema!r}")
    unknown = set(schema) - _KNOWN
    if unknown:
        raise Unsupported(f"keywords {sorted(unknown)}")
    if "anyOf" in schema:
        rest = {k: v for k, v in schema.items() if k != "anyOf" and k not in _DOC}
        if rest:
            raise Unsupported("anyOf beside other keywords")
        return "(?:" + "|".join(token(alt) for alt in schema["anyOf"]) + ")"
    kinds = schema.get("type")
    if kinds is None:
        raise Unsupported("a schema without type")
    if isinstance(kinds, list):
        return "(?:" + "|".join(token({**schema, "type": k}) for k in kinds) + ")"
    if kinds == "string":
        return _string(schema)
    if kinds == "integer":
        return _integer(schema)
    if kinds == "number":
        return _number(schema)
    if kinds == "boolean":
        return "(?:true|false)"
    if kinds == "null":
        return "null"
    if kinds == "object":
        return _object(schema)
    if kinds == "array":
        return _array(schema)
    raise Unsupported(f"type {kinds!r}")


@cache
def _compile() -> tuple[dict[str, list[str]], dict[str, str], set[str]]:
    regexes: dict[str, list[str]] = {}
    unsupported: dict[str, str] = {}
    unique: set[str] = set()
    for name, version in sorted(SCHEMA_SET.paths):
        key = f"{name}/{version}"
        if name in SEMANTIC_CHECKS:
            unsupported[key] = "a semantic check (fupin.contract.SEMANTIC_CHECKS)"
            continue
        schema = SCHEMA_SET.event_schema(name, version)
        try:
            order = list(schema["properties"])
            if order[:2] != ["event_id", "event_type"] or order[-1] != "payload":
                raise Unsupported("an envelope not ordered event_id, event_type … payload")
            regexes.setdefault(name, []).append("^" + token(schema) + "$")
            if _has_unique(schema):
                unique.add(name)
        except Unsupported as exc:
            unsupported[key] = str(exc)
    return regexes, unsupported, unique


def message_regexes() -> dict[str, list[str]]:
    """Event type → the expressions of its versions (a message matching one is of that type)."""
    return _compile()[0]


def unsupported_types() -> dict[str, str]:
    """``<event_type>/<version>`` → why the fast path leaves it to Python."""
    return _compile()[1]


#: The event type of a message whose envelope begins as the schema does ('' otherwise): which
#: expression to try.
EVENT_TYPE = literal(r'^\{"event_id":"[^"]*","event_type":"([a-z_.]+)"')
#: The event id of a message whose envelope begins as the schema does ('' otherwise).
EVENT_ID = literal(r'^\{"event_id":"([^"\\]*)"')


#: The values every check and column of a staged message reads, computed once per message (the
#: checks and the stored columns share them: one JSON parse, one parse of each time):
#: ``t`` the envelope's fields, ``occurred``/``recorded`` the parsed times (NULL if unparseable),
#: ``payload_text`` the payload's own text. Needs ``v``; ``SELECT *, {STAGED}`` over the stage.
#: For a message the type's expression matches they are its fields as written (the expression
#: has fixed their form: each key once, no escapes); for any other, whatever they are, the
#: message is refused by the match and none of them can raise.
ENVELOPE = (
    "JSONExtract(v, 'Tuple(event_id String, event_type String, schema_version UInt16, department String, "
    "source_system String, household_id String, person_id Nullable(String), region_code String, "
    "occurred_at String, recorded_at String)')"
)
_PAYLOAD_MARKER = ',"payload":'
_PAYLOAD_AT = f"position(v, {literal(_PAYLOAD_MARKER)}) + {len(_PAYLOAD_MARKER)}"
STAGED = ", ".join(
    [
        f"{ENVELOPE} AS t",
        "parseDateTime64BestEffortOrNull(t.occurred_at, 3, 'UTC') AS occurred",
        "parseDateTime64BestEffortOrNull(t.recorded_at, 3, 'UTC') AS recorded",
        # Last in the envelope's order (the expression has fixed it), after the first
        # ``,"payload":`` (no string holds a quote).
        f"substring(v, {_PAYLOAD_AT}, length(v) - ({_PAYLOAD_AT})) AS payload_text",
    ]
)


def _calendar(day: str) -> str:
    """A real date (the expression has fixed the form, the time's ranges, and days up to 31)."""
    return f"toString(toDate32OrNull({day})) = {day}"


def _year(day: str) -> str:
    """The sink's range: DateTime64 stores 1900–2299 (the local year, as ``warehouse.sink._time_text``)."""
    return f"substring({day}, 1, 4) BETWEEN '1900' AND '2299'"


def _has_unique(schema: Any) -> bool:
    if isinstance(schema, dict):
        return bool(schema.get("uniqueItems")) or any(_has_unique(v) for v in schema.values())
    return isinstance(schema, list) and any(_has_unique(v) for v in schema)


#: Every array of plain strings in the payload has no duplicate. A string cannot hold a quote, so
#: each ``["…"(,"…")*]`` is an array, and every array of enumerated strings is one of these (the
#: envelope holds no array: the payload is where they are).
_UNIQUE = (
    "arrayAll(a -> length(arrayDistinct(splitByChar(',', a))) = length(splitByChar(',', a)), "
    "extractAll(payload_text, " + literal(r'\[("[^"\],]*"(?:,"[^"\],]*")*)\]') + "))"
)


def sink_checks() -> str:
    """The validity judgement beyond the schema (:mod:`fupin.validity`), for a matched message ``v``.

    Needs the message's ``topic``, its Kafka key ``k`` and :data:`STAGED`. The expression has
    fixed the order and form of the fields (so no key repeats, no string holds a control
    character or an escape, and ``schema_version`` is an integer literal). Raw identifiers: the
    judgement reads only ``source_system`` and the payload's strings (:func:`fupin.validity.
    _identifier_error`), so only those texts are searched, for a superset of its patterns
    (:data:`fupin.privacy.CANDIDATE_RE2`): what it finds, the Python path decides exactly.
    """
    occurred, recorded = "substring(t.occurred_at, 1, 10)", "substring(t.recorded_at, 1, 10)"
    topic_department = "splitByChar('.', topic)[-1]"
    # A millisecond short of the slack: what is left to the millisecond, Python decides.
    slack_ms = int(validity.RECORDING_SLACK.total_seconds() * 1000) - 1
    candidate = literal(privacy.CANDIDATE_RE2)
    parts = [
        "isValidUTF8(v)",
        _calendar(occurred),
        _calendar(recorded),
        _year(occurred),
        _year(recorded),
        f"({topic_department} NOT IN ({', '.join(map(literal, DEPARTMENTS))}) "
        f"OR t.department = {topic_department})",
        "k = t.household_id",
        f"dateDiff('millisecond', recorded, occurred) < {slack_ms}",
        f"NOT match(t.source_system, {candidate})",
        f"NOT match(payload_text, {candidate})",
    ]
    return " AND ".join(f"({p})" for p in parts)


def type_match(event_type: str) -> str:
    """True where ``v`` matches the expression of one of ``event_type``'s versions."""
    return "(" + " OR ".join(f"match(v, {literal(r)})" for r in message_regexes()[event_type]) + ")"


def unique_check(event_types: list[str]) -> str:
    """True where a message of one of ``event_types`` (its type in ``et``) has no repeated item
    in an array that must hold unique items; needs :data:`STAGED`."""
    unique = sorted(set(event_types) & _compile()[2])
    if not unique:
        return "1"
    return f"(et NOT IN ({', '.join(map(literal, unique))}) OR {_UNIQUE})"


# ------------------------------------------------------------------------------------------------
# Columns of an accepted message


def event_columns() -> list[str]:
    """The events table's columns (``warehouse.sink.EVENT_COLUMNS`` order) from an accepted message.

    Needs :data:`STAGED`, ``topic``, ``partition``, ``offset`` and ``ingested_at``; the payload is
    the message's own text of it. The times are not NULL: the checks have compared them.
    """
    return [
        "t.event_id",
        "t.event_type",
        "t.schema_version",
        "t.department",
        "t.source_system",
        "t.household_id",
        "t.person_id",
        "t.region_code",
        "assumeNotNull(occurred)",
        "assumeNotNull(recorded)",
        "payload_text",
        "topic",
        "partition",
        "offset",
        "ingested_at",
        "t.occurred_at",
        "t.recorded_at",
    ]
