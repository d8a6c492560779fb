"""Python values for ClickHouse results, chosen by each column's type.

chdb answers in JSONCompact (with 64-bit-and-wider integers, decimals and non-finite floats quoted,
so no value passes through a float); :func:`converter` maps a column's type to the function that
turns its JSON value into what clickhouse-connect would return for the same type on a server:
``Date`` -> ``date``, ``DateTime('zone')`` -> aware ``datetime``, ``Decimal`` -> ``Decimal``,
``Int128`` and wider -> exact ``int``, arrays -> lists, tuples -> tuples, ``Nullable`` null -> None.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

Converter = Callable[[Any], Any]

_NAMED_ELEMENT = re.compile(r"^(`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"|[A-Za-z_][A-Za-z0-9_.]*)\s+(\S.*)$", re.S)


def _identity(value: Any) -> Any:
    return value


def split_args(args: str) -> list[str]:
    """Top-level comma-separated parts of a type's arguments (parentheses and quotes respected)."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(args):
        ch = args[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(args[start:i].strip())
            start = i + 1
        i += 1
    tail = args[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'`\"":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _datetime(zone: str | None, fraction: bool) -> Converter:
    tz = ZoneInfo(zone) if zone else None

    def convert(value: Any) -> datetime:
        text = str(value)
        if fraction and "." in text:
            head, frac = text.split(".", 1)
            text = f"{head}.{frac[:6].ljust(6, '0')}"  # Python keeps microseconds
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=tz) if tz else parsed

    return convert


def _tuple(elements: list[str]) -> Converter:
    names: list[str | None] = []
    converters: list[Converter] = []
    for element in elements:
        match = _NAMED_ELEMENT.match(element)
        if match and "(" not in match.group(1):
            names.append(_unquote(match.group(1)))
            converters.append(converter(match.group(2)))
        else:
            names.append(None)
            converters.append(converter(element))

    def convert(value: Any) -> tuple:
        if isinstance(value, dict):  # named tuples come as JSON objects
            return tuple(c(value.get(n)) for n, c in zip(names, converters, strict=True))
        return tuple(c(v) for v, c in zip(value, converters, strict=True))

    return convert


def _nullable(inner: Converter) -> Converter:
    return lambda value: None if value is None else inner(value)


def _integer(value: Any) -> int:
    return int(value)


def _float(value: Any) -> float:
    return float(value)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")


def _date(value: Any) -> date:
    return date.fromisoformat(str(value))


_SIMPLE: dict[str, Converter] = {
    "Date": _date,
    "Date32": _date,
    "Bool": _bool,
    "Boolean": _bool,
    "Float32": _float,
    "Float64": _float,
    "BFloat16": _float,
    "UUID": lambda v: uuid.UUID(str(v)),
    "IPv4": lambda v: ipaddress.IPv4Address(str(v)),
    "IPv6": lambda v: ipaddress.ip_address(str(v)),
}


@lru_cache(maxsize=1024)
def converter(type_name: str) -> Converter:
    """The function turning a JSONCompact value of ``type_name`` into its Python value."""
    type_name = type_name.strip()
    name, _, rest = type_name.partition("(")
    name = name.strip()
    args = split_args(rest[: rest.rfind(")")]) if rest else []
    if name == "Nullable":
        return _nullable(converter(args[0]))
    if name in ("LowCardinality", "SimpleAggregateFunction"):
        return converter(args[-1])
    if name in ("Array", "Nested"):
        if name == "Nested":
            return _identity
        inner = converter(args[0])
        return lambda value: [inner(v) for v in value]
    if name == "Tuple":
        return _tuple(args)
    if name == "Map":
        key, val = converter(args[0]), converter(args[1])
        return lambda value: {key(k): val(v) for k, v in value.items()}
    if name == "DateTime":
        return _datetime(_unquote(args[0]) if args else None, fraction=False)
    if name == "DateTime64":
        return _datetime(_unquote(args[1]) if len(args) > 1 else None, fraction=True)
    if name.startswith("Decimal"):
        return _decimal
    if re.fullmatch(r"U?Int(8|16|32|64|128|256)", name) or name.startswith("Interval"):
        return _integer
    return _SIMPLE.get(name, _identity)


def row_converter(column_types: list[str]) -> Callable[[list[Any]], tuple]:
    """One function for a whole row: each value through its column's converter."""
    converters = [converter(t) for t in column_types]

    def convert(row: list[Any]) -> tuple:
        return tuple(c(v) for c, v in zip(converters, row, strict=True))

    return convert
