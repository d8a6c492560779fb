"""Column mappings: how one department's export format becomes contract events.

A mapping is a YAML file in ``producers/mappings/`` (see its README). It names the columns of
the envelope fields, the event-type column (or a constant), the payload fields per event type,
and the person column holding the raw resident ID, which the SDK pseudonymizes.

Every column of a file is classified: read by the mapping, or listed under ``drop`` by kind
(``names``, ``phones``, ``addresses``: personal, never read; ``unused``: not personal, not
needed). A mapping that reads a column it names as personal is refused when loaded; a file with
a column the mapping does not classify is refused before a row is sent (a JSONL row with such a
key is rejected). Conversion errors name the column, never its value: a value may be personal.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from fupin import PROJECT_ROOT

MAPPINGS_DIR = PROJECT_ROOT / "producers" / "mappings"
_ENVELOPE_FIELDS = ("household_id", "region_code", "occurred_at", "recorded_at", "resident_id", "person_id")
_TYPES = ("str", "int", "number", "bool", "date", "datetime", "list", "members", "object", "const")
_NO_DEFAULT = object()
#: Kinds of dropped column: the personal ones, and columns that are simply not needed.
PERSONAL_KINDS = ("names", "phones", "addresses")
DROP_KINDS = (*PERSONAL_KINDS, "unused")
_DATE_RE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_DT_RE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")


class MappingError(ValueError):
    """A mapping file that cannot be used (a setup error, not bad input)."""


class RowError(ValueError):
    """A row that cannot become an event; ``reason`` names the column, not the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Field:
    column: str | None
    type: str = "str"
    values: dict[str, Any] | None = None
    optional: bool = False
    const: Any = None
    sep: str | None = None
    item: dict[str, Field] | None = None
    tz: str = "+08:00"
    default: Any = _NO_DEFAULT


def _field(spec: Any, where: str) -> Field:
    if isinstance(spec, str):
        return Field(spec)
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: expected a column name or a mapping, got {type(spec).__name__}")
    typ = spec.get("type", "const" if "const" in spec else "list" if "sep" in spec else "str")
    if typ not in _TYPES:
        raise MappingError(f"{where}: unknown type {typ!r}; expected one of {', '.join(_TYPES)}")
    if typ not in ("const", "object") and not spec.get("column"):
        raise MappingError(f"{where}: needs 'column'")
    item = None
    if typ in ("members", "object"):
        item = {k: _field(v, f"{where}.item.{k}") for k, v in (spec.get("item") or {}).items()}
    values = spec.get("values")
    if values is not None:
        values = {str(k): v for k, v in values.items()}
    return Field(spec.get("column"), typ, values, bool(spec.get("optional", False)), spec.get("const"),
                 spec.get("sep"), item, str(spec.get("tz", "+08:00")), spec.get("default", _NO_DEFAULT))


@dataclass
class Mapping:
    name: str
    department: str
    format: str
    files: list[str]
    source_system: str
    record_id: str | None
    event_type: Field
    envelope: dict[str, Field]
    person_events: frozenset[str]
    payload: dict[str, dict[str, Field]]
    drop: dict[str, list[str]]
    encoding: str = "utf-8-sig"

    @classmethod
    def load(cls, path: Path | str) -> Mapping:
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise MappingError(f"{path}: cannot read the mapping ({exc})") from exc
        if not isinstance(doc, dict):
            raise MappingError(f"{path}: a mapping file holds a YAML mapping")
        for key in ("department", "format", "event_type", "household_id", "region_code", "occurred_at", "payload"):
            if key not in doc:
                raise MappingError(f"{path}: missing key {key!r}")
        if doc["format"] not in ("csv", "jsonl", "xlsx"):
            raise MappingError(f"{path}: format must be csv, jsonl or xlsx")
        envelope = {k: _field(doc[k], f"{path.name}:{k}") for k in _ENVELOPE_FIELDS if k in doc}
        payload = {
            (t if "." in t else f"{doc['department']}.{t}"): {k: _field(v, f"{path.name}:payload.{t}.{k}")
                                                               for k, v in (fields or {}).items()}
            for t, fields in doc["payload"].items()
        }
        et = _field(doc["event_type"], f"{path.name}:event_type")
        drop = doc.get("drop") or {}
        if not isinstance(drop, dict) or set(drop) - set(DROP_KINDS):
            raise MappingError(
                f"{path}: 'drop' maps each kind ({', '.join(DROP_KINDS)}) to the columns of that kind"
            )
        drop = {k: [str(c) for c in drop.get(k) or []] for k in DROP_KINDS}
        mapping = cls(
            name=path.stem, department=doc["department"], format=doc["format"], files=list(doc.get("files", [])),
            source_system=str(doc.get("source_system", f"{doc['department']}-export")),
            record_id=doc.get("record_id"), event_type=et, envelope=envelope,
            person_events=frozenset(t if "." in t else f"{doc['department']}.{t}" for t in doc.get("person_events", [])),
            payload=payload, drop=drop,
            encoding=str(doc.get("encoding", "utf-8-sig" if doc["format"] == "csv" else "utf-8")),
        )
        published = mapping.read_paths() & mapping.personal()
        if published:
            raise MappingError(
                f"{path}: mapping {mapping.name} would publish {', '.join(sorted(published))}, "
                "which it names as personal (drop: names, phones, addresses)"
            )
        return mapping

    def columns(self) -> set[str]:
        """Top-level columns the mapping reads (for the header check)."""
        cols = {f.column for f in self.envelope.values() if f.column}
        if self.event_type.column:
            cols.add(self.event_type.column)
        if self.record_id:
            cols.add(self.record_id)
        for fields in self.payload.values():
            cols.update(f.column for f in fields.values() if f.column)
        return cols

    def _fields(self) -> list[Field]:
        out = list(self.envelope.values())
        for fields in self.payload.values():
            out.extend(fields.values())
        return out

    def read_paths(self) -> set[str]:
        """Every column the mapping reads, a member's or object's sub-column as ``column.sub``."""
        paths = self.columns()
        for f in self._fields():
            for sub in (f.item or {}).values():
                if sub.column and f.column:
                    paths.add(f"{f.column}.{sub.column}")
                elif sub.column:
                    paths.add(sub.column)
        return paths

    def personal(self) -> set[str]:
        """The columns the mapping names as names, phones or addresses."""
        return {c for k in PERSONAL_KINDS for c in self.drop[k]}

    def identifier_columns(self) -> set[str]:
        """Columns (paths) holding raw resident IDs: read only to be pseudonymized."""
        cols = set()
        for f in self._fields():
            for key, sub in (f.item or {}).items():
                if key == "resident_id" and sub.column and f.column:
                    cols.add(f"{f.column}.{sub.column}")
        rid = self.envelope.get("resident_id")
        if rid is not None and rid.column:
            cols.add(rid.column)
        return cols

    def unclassified(self, row: dict[str, Any]) -> list[str]:
        """The columns of a row (a header's, nested member keys as ``a.b``) the mapping neither reads nor drops."""
        known = self.read_paths() | {c for k in DROP_KINDS for c in self.drop[k]}
        out = [c for c in row if c and c not in known]
        for key, value in row.items():
            if isinstance(value, list) and key in known:
                out.extend(sorted({f"{key}.{k}" for m in value if isinstance(m, dict) for k in m} - known))
        return out

    def required_columns(self) -> set[str]:
        """Top-level columns every row needs: the envelope's, the event type's and the record id's.

        Payload columns are left out: a file of several event types may leave a type's columns
        out when it holds no row of that type, and a row missing one is rejected naming it."""
        cols = {f.column for k, f in self.envelope.items() if f.column and not f.optional
                and k in ("household_id", "region_code", "occurred_at")}  # fmt: skip
        if self.event_type.column:
            cols.add(self.event_type.column)
        if self.record_id:
            cols.add(self.record_id)
        return cols

    def check_header(self, header: list[str], file_name: str) -> None:
        """Refuse a header before any row is read: a required column missing, or one not classified."""
        missing = sorted(self.required_columns() - set(header))
        if missing:
            raise MappingError(
                f"{file_name}: the header lacks column(s) {', '.join(missing)} that mapping {self.name} "
                "needs in every row; nothing was sent"
            )
        if unknown := self.unclassified(dict.fromkeys(header)):
            raise MappingError(
                f"{file_name}: mapping {self.name} does not classify column(s) {', '.join(unknown)}: "
                "read them, or list them under drop (names, phones, addresses or unused); nothing was sent"
            )

    def personal_values(self, row: dict[str, Any], raw_ids: bool = False) -> list[tuple[str, str]]:
        """(column, value) of the row's names, phones and addresses (and raw IDs), nested ones too.

        Values shorter than two characters are left out: they would match everywhere.
        """
        wanted = self.personal() | (self.identifier_columns() if raw_ids else set())
        out = []
        for path in wanted:
            head, _, sub = path.partition(".")
            value = row.get(head)
            items = [m.get(sub) for m in value if isinstance(m, dict)] if sub and isinstance(value, list) else [value]
            out.extend((path, t) for v in items if v is not None and len(t := str(v).strip()) >= 2)
        return out

    def personal_in(self, row: dict[str, Any], payload: Any, path: str = "payload") -> tuple[str, str] | None:
        """(payload path, personal column) when a published string holds this row's name, phone or address."""
        values = self.personal_values(row)
        if not values:
            return None
        return _holding(payload, values, path)

    def redacted_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with personal and raw-ID columns (nested ``a.b`` too) replaced by [redacted], and
        those values redacted wherever else in the row they were typed (a name in a free-text cell)."""
        from fupin.privacy import REDACTED

        hidden = self.personal() | self.identifier_columns()
        secrets = sorted({v for _, v in self.personal_values(row, raw_ids=True)}, key=len, reverse=True)

        def scrub(value: Any) -> Any:
            if isinstance(value, str):
                for secret in secrets:
                    value = value.replace(secret, REDACTED)
            return value

        out: dict[str, Any] = {}
        for key, value in row.items():
            if key in hidden:
                out[key] = REDACTED
            elif isinstance(value, list):
                out[key] = [
                    {k: REDACTED if f"{key}.{k}" in hidden else scrub(v) for k, v in m.items()}
                    if isinstance(m, dict) else scrub(m)
                    for m in value
                ]  # fmt: skip
            else:
                out[key] = scrub(value)
        return out

    # -- conversion ------------------------------------------------------------------------------
    def convert(self, row: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """(record identity, keyword arguments of Publisher.build) for one row; RowError if unusable."""
        et = self.event_type
        if et.type == "const":
            event_type = et.const
        else:
            raw = _text(row.get(et.column))
            if raw is None:
                raise RowError(f"column {et.column}: empty, no event type")
            event_type = (et.values or {}).get(raw, raw if et.values is None else None)
            if event_type is None:
                raise RowError(f"unknown event type {raw[:40]!r} in column {et.column}")
        if "." not in event_type:
            event_type = f"{self.department}.{event_type}"
        fields = self.payload.get(event_type)
        if fields is None:
            raise RowError(f"unknown event type {event_type!r}: this mapping has no payload for it")
        out: dict[str, Any] = {"event_type": event_type}
        for name in ("household_id", "region_code", "occurred_at"):
            value = _convert(self.envelope[name], row)
            if value is None:
                raise RowError(f"column {self.envelope[name].column}: empty ({name})")
            out[name] = value
        if "recorded_at" in self.envelope:
            rec = _convert(self.envelope["recorded_at"], row, typ_default="datetime")
            if rec is not None:
                out["recorded_at"] = rec
        if event_type in self.person_events:
            f = self.envelope.get("resident_id")
            if f is not None:
                rid = _convert(f, row)
                if rid is None:
                    raise RowError(f"column {f.column}: empty, this event concerns one person")
                out["resident_id"] = str(rid)
            elif "person_id" in self.envelope:
                out["person_id"] = _convert(self.envelope["person_id"], row)
        payload: dict[str, Any] = {}
        for key, f in fields.items():
            value = _convert(f, row)
            if value is None:
                if f.optional:
                    continue
                raise RowError(f"column {f.column}: empty ({key})")
            payload[key] = value
        out["payload"] = payload
        rid_col = self.record_id
        identity = None if rid_col is None else _text(row.get(rid_col))
        return identity, out


def _holding(value: Any, secrets: list[tuple[str, str]], path: str) -> tuple[str, str] | None:
    """The first (path, column) where a string of ``value`` contains one of the (column, secret)s."""
    if isinstance(value, str):
        for column, secret in secrets:
            if secret in value:
                return path, column
    elif isinstance(value, dict):
        for k, v in value.items():
            if found := _holding(v, secrets, f"{path}.{k}"):
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if found := _holding(v, secrets, f"{path}[{i}]"):
                return found
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _convert(f: Field, row: dict[str, Any], typ_default: str | None = None) -> Any:
    value = _convert_raw(f, row, typ_default)
    if value is None and f.default is not _NO_DEFAULT:
        return f.default
    return value


def _convert_raw(f: Field, row: dict[str, Any], typ_default: str | None = None) -> Any:
    if f.type == "const":
        return f.const
    if f.type == "object":
        obj = {k: v for k, sub in (f.item or {}).items() if (v := _convert(sub, row)) is not None}
        return obj or None
    raw = row.get(f.column)
    typ = f.type if f.type != "str" or typ_default is None else typ_default
    if type(raw) is str:  # the common case (CSV, JSONL): fast paths that give the same results
        t = raw.strip()
        if not t:
            return None
        if f.values is not None and typ != "list":
            if t not in f.values:
                raise RowError(f"column {f.column}: a value is not one this mapping knows")
            return f.values[t]
        if typ == "str":
            return t
        if typ == "date" and len(t) == 10 and t[4] == "-" and t[7] == "-":
            try:
                return date.fromisoformat(t).isoformat()
            except ValueError:
                raise RowError(f"column {f.column}: not a valid date") from None
        if typ == "datetime" and len(t) == 19 and t[10] == " " and t[4] == "-":
            try:
                datetime.fromisoformat(t)
            except ValueError:
                raise RowError(f"column {f.column}: not a valid datetime") from None
            return f"{t[:10]}T{t[11:]}{f.tz}"
    if typ == "members":
        if raw in (None, "", []):
            return None
        if not isinstance(raw, list):
            raise RowError(f"column {f.column}: expected a list of members")
        return [_member(f, m, i) for i, m in enumerate(raw)]
    if typ == "list":
        if isinstance(raw, list):
            items = [_text(x) for x in raw]
        else:
            text = _text(raw)
            if text is None:
                return None
            items = [x.strip() for x in re.split(f.sep or r"[、|,;，；]", text)]
        items = [x for x in items if x]
        if f.values is not None:
            mapped = []
            for x in items:
                if x not in f.values:
                    raise RowError(f"column {f.column}: a value is not one this mapping knows")
                mapped.append(f.values[x])
            items = mapped
        return items or None
    if typ in ("date", "datetime") and isinstance(raw, datetime):
        return raw.date().isoformat() if typ == "date" else raw.strftime("%Y-%m-%dT%H:%M:%S") + f.tz
    if typ == "date" and isinstance(raw, date):
        return raw.isoformat()
    text = _text(raw)
    if text is None:
        return None
    if f.values is not None:
        if text not in f.values:
            raise RowError(f"column {f.column}: a value is not one this mapping knows")
        return f.values[text]
    try:
        if typ == "str":
            return text
        if typ == "int":
            v = float(text)
            if not v.is_integer():
                raise ValueError
            return int(v)
        if typ == "number":
            v = float(text)
            if not math.isfinite(v):
                raise ValueError
            return v
        if typ == "bool":
            raise RowError(f"column {f.column}: a yes/no column needs 'values' in the mapping")
        if typ == "date":
            m = _DATE_RE.match(text)
            if m is None:
                text = text[:10] if len(text) > 10 and text[10] in " T" else text
                return date.fromisoformat(text).isoformat()
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        if typ == "datetime":
            m = _DT_RE.match(text)
            if m is None:
                return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
            dt = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0))
            return dt.strftime("%Y-%m-%dT%H:%M:%S") + f.tz
    except (ValueError, OverflowError):
        raise RowError(f"column {f.column}: not a valid {typ}") from None
    raise RowError(f"column {f.column}: unsupported type {typ}")


def _member(f: Field, member: Any, index: int) -> dict[str, Any]:
    if not isinstance(member, dict):
        raise RowError(f"column {f.column}: member {index + 1} is not an object")
    out: dict[str, Any] = {}
    for key, sub in (f.item or {}).items():
        try:
            value = _convert(sub, member)
        except RowError as exc:
            raise RowError(f"column {f.column}, member {index + 1}: {exc.reason}") from None
        if value is None and not sub.optional:
            raise RowError(f"column {f.column}, member {index + 1}: {sub.column} empty")
        if value is not None:
            out[key] = value
    return out


def shipped_mappings() -> list[Path]:
    return sorted(MAPPINGS_DIR.glob("*.yaml"))


def find_mapping(department: str, path: Path) -> Mapping:
    """The shipped mapping of ``department`` whose file patterns match ``path``'s name."""
    candidates = [m for m in (Mapping.load(p) for p in shipped_mappings()) if m.department == department]
    if not candidates:
        raise MappingError(f"no shipped mapping for department {department!r}: pass --mapping FILE")
    matching = [m for m in candidates if any(fnmatch.fnmatch(path.name, pat) for pat in m.files)]
    if len(matching) == 1:
        return matching[0]
    by_format = [m for m in candidates if m.format == _format_of(path)]
    if len(by_format) == 1:
        return by_format[0]
    names = ", ".join(m.name for m in candidates)
    raise MappingError(f"cannot tell which mapping of {department!r} reads {path.name} (candidates: {names}): "
                       "pass --mapping FILE")


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".csv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}.get(suffix, suffix)
