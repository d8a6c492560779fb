"""Raw identifiers: the patterns no string in the platform may hold, and their redaction.

The binding rule (events.md, "Validity" and "Dead letters and privacy"): a string must not hold
what looks like a raw identifier, each standing alone (not part of a longer run of digits or
letters):

- an 18-character resident ID (17 digits and a digit or X) whose ISO 7064 MOD 11-2 check holds;
- a 15-digit old-style resident ID;
- a mainland mobile number: 11 digits, ``1[3-9]`` then 9 digits.

Producers, importers, the validity judgement (:mod:`fupin.validity`), dead letters and
``fupin privacy scan`` all use this module, so the patterns have one home. Nothing here returns
or logs the matched value itself: findings name the kind and where, never the identifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from operator import mul
from typing import Any

#: What replaces an identifier's span in a redacted text.
REDACTED = "[redacted]"
#: Kinds of raw identifier.
RESIDENT_ID_18 = "resident_id_18"
RESIDENT_ID_15 = "resident_id_15"
MOBILE = "mobile"

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# One alternation; the lookarounds make "standing alone" (no digit or letter on either side).
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(?:([0-9]{17}[0-9Xx])|([0-9]{15})|(1[3-9][0-9]{9}))(?![0-9A-Za-z])")
_CANDIDATE_BYTES = re.compile(_CANDIDATE.pattern.encode())
#: A superset of the patterns without look-arounds, for engines without them (re2 in ClickHouse):
#: a run of 11, 15 or 17 + digit/X digits standing alone. What it matches is checked exactly here.
CANDIDATE_RE2 = r"(?:^|[^0-9A-Za-z])(?:[0-9]{11}|[0-9]{15}|[0-9]{17}[0-9Xx])(?:[^0-9A-Za-z]|$)"

# The pre-filter: each byte as its class (digit 0, X, other letter a, anything else .), so that a
# standing-alone run of 11, 15, 17 + X or 18 digits is a plain substring to find (much cheaper
# than a regular expression with look-arounds).
_CLASSES = bytes(
    ord("0") if chr(b).isdigit() and b < 128 else ord("X") if b in b"Xx" else
    ord("a") if chr(b).isalpha() and b < 128 else ord(".")
    for b in range(256)
)  # fmt: skip
_RUN11, _RUN15, _RUN18, _RUN17X = (
    b"." + run + b"." for run in (b"0" * 11, b"0" * 15, b"0" * 18, b"0" * 17 + b"X")
)
#: Cheap pre-filter in SQL (also valid RE2): no run of 11 digits and no \\u escape means no
#: finding; ``fupin privacy scan`` filters the warehouse's strings with it.
MAYBE_PATTERN = r"[0-9]{11}|\\u"
#: Envelope and payload fields whose format the contract fixes: the only strings not checked.
EXEMPT_FIELDS = frozenset(
    {"event_id", "event_type", "household_id", "person_id", "region_code", "new_region_code"}
)


def check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID."""
    return _CHECK[sum(map(mul, map(int, first17), _WEIGHTS)) % 11]


def _kind(match: re.Match) -> str | None:
    id18, id15, mobile = match.groups()
    if id18 is not None:
        if isinstance(id18, bytes):
            id18 = id18.decode()
        return RESIDENT_ID_18 if check_digit(id18[:17]) == id18[17].upper() else None
    return RESIDENT_ID_15 if id15 is not None else MOBILE if mobile is not None else None


@dataclass(frozen=True, slots=True)
class Span:
    """Where a raw identifier stands in a text (never the value itself)."""

    kind: str
    start: int
    end: int


def find(text: str) -> list[Span]:
    """Every raw-identifier span of ``text``, in order."""
    return [Span(kind, m.start(), m.end()) for m in _CANDIDATE.finditer(text) if (kind := _kind(m))]


def first_kind(text: str) -> str | None:
    """The kind of the first raw identifier in ``text``, or None."""
    for m in _CANDIDATE.finditer(text):
        if kind := _kind(m):
            return kind
    return None


def redact(text: str) -> tuple[str, int]:
    """``text`` with every raw-identifier span replaced by ``[redacted]``, and how many were."""
    count = 0

    def sub(m: re.Match) -> str:
        nonlocal count
        if _kind(m) is None:
            return m.group(0)
        count += 1
        return REDACTED

    return _CANDIDATE.sub(sub, text), count


def redact_bytes(raw: bytes) -> tuple[bytes, int]:
    """Raw message bytes with every raw-identifier span replaced; the count of spans.

    Works on the bytes as they are (not necessarily UTF-8 or JSON), so a dead letter keeps the
    original bytes everywhere else. A JSON ``\\u`` escape could spell digits; such messages are
    decoded and checked by :func:`strings_with_identifiers` in the judgement as well.
    """
    count = 0

    def sub(m: re.Match) -> bytes:
        nonlocal count
        if _kind(m) is None:
            return m.group(0)
        count += 1
        return REDACTED.encode()

    out = _CANDIDATE_BYTES.sub(sub, raw)
    return out, count


def may_hold_identifier(raw: bytes) -> bool:
    """False when the raw bytes certainly hold no raw identifier (the fast path of the judgement).

    True for a run of 11, 15, 17 + X or 18 digits standing alone, or any backslash escape (a
    ``\\u`` escape could spell digits); the exact check then reads the decoded strings.
    """
    if b"\\" in raw:
        return True
    classes = raw.translate(_CLASSES)
    if raw[:1].isdigit() or raw[-1:].isdigit():  # a run at either end has no separator to find
        classes = b"." + classes + b"."
    return _RUN11 in classes or _RUN15 in classes or _RUN18 in classes or _RUN17X in classes


def strings_with_identifiers(
    value: Any, exempt: frozenset[str] = frozenset(), path: str = ""
) -> Iterator[tuple[str, str]]:
    """(path, kind) of every string in a JSON value that holds a raw identifier.

    Keys named in ``exempt`` are skipped at any depth (fields whose format the contract fixes).
    """
    if isinstance(value, str):
        kind = first_kind(value)
        if kind:
            yield path or "value", kind
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in exempt:
                continue
            if isinstance(k, str) and (kind := first_kind(k)):
                yield f"{path}.{{key}}" if path else "{key}", kind
            yield from strings_with_identifiers(v, exempt, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings_with_identifiers(item, exempt, f"{path}[{i}]")
