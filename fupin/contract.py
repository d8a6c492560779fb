"""The event contract: the one validator every component uses (schemas/, events.md).

Layout of ``schemas/`` (see ``schemas/README.md``): ``envelope/1.json``, ``fragments/*.json`` and
``<department>/<name>/<version>.json`` (the payload schema of ``<department>.<name>``).

Speed: for each (event type, version) the envelope and that payload schema are composed into one
self-contained schema ($refs inlined) and compiled once, on first use, by jsonschema-rs (Rust).
A valid envelope pays for that compiled ``is_valid`` plus the few checks JSON Schema cannot
express (real calendar dates, the hospitalization sum): see ``bench/validate.py``. Only an
invalid envelope pays for the pure-Python ``jsonschema``, which finds a readable reason such as
``payload.net_income_per_capita: -5 is less than the minimum of 0``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import orjson

from fupin import PROJECT_ROOT

SCHEMAS_DIR: Path = PROJECT_ROOT / "schemas"

#: Folders of schemas/ that are not departments.
_NOT_DEPARTMENTS = frozenset({"envelope", "fragments"})
#: Schema keywords that only document; ignored by the compatibility check.
_DOC_KEYWORDS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples"})
#: Custom keyword in a payload schema: the event concerns one person, so person_id is required.
PERSON_EVENT_KEYWORD = "x-person-event"
#: Tolerance of hospitalization_settled: total_cost equals its four parts within this (yuan).
HOSPITAL_SUM_TOLERANCE = 1.0


class ContractError(ValueError):
    """An envelope that breaks the contract; ``reason`` says what and where, readably."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SchemaFolderError(RuntimeError):
    """The schemas folder itself is broken (bad $ref, missing envelope): a bug, not bad input."""


# --------------------------------------------------------------------------------------------
# Loading and composing schemas


def _load_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SchemaFolderError(f"{path}: {exc}") from exc


def _pointer(doc: Any, fragment: str, where: str) -> Any:
    node = doc
    for part in (p for p in fragment.lstrip("/").split("/") if p):
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError) as exc:
            raise SchemaFolderError(f"{where}: $ref fragment #{fragment} not found") from exc
    return node


def _inline_refs(node: Any, base: Path, cache: dict[Path, Any], depth: int = 0) -> Any:
    """A copy of ``node`` with every relative ``$ref`` replaced by its (resolved) target."""
    if depth > 50:
        raise SchemaFolderError(f"{base}: $ref nesting too deep (a cycle?)")
    if isinstance(node, list):
        return [_inline_refs(item, base, cache, depth) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        extra = set(node) - {"$ref"} - _DOC_KEYWORDS
        if extra:
            raise SchemaFolderError(f"{base}: keywords beside $ref are ignored in draft-07: {sorted(extra)}")
        target, _, fragment = node["$ref"].partition("#")
        path = (base.parent / target).resolve() if target else base
        if path not in cache:
            cache[path] = _load_json(path)
        return _inline_refs(_pointer(cache[path], fragment, str(base)), path, cache, depth + 1)
    return {k: _inline_refs(v, base, cache, depth) for k, v in node.items()}


def _strip_meta(schema: dict) -> dict:
    """A payload schema fit to nest in another: no $schema/$id, no custom keyword."""
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id", PERSON_EVENT_KEYWORD)}


class SchemaSet:
    """All schemas of one ``schemas/`` folder, with compiled validators made on first use."""

    def __init__(self, schemas_dir: Path) -> None:
        self.dir = Path(schemas_dir)
        envelope_path = self.dir / "envelope" / "1.json"
        if not envelope_path.is_file():
            raise SchemaFolderError(f"{envelope_path}: the envelope schema is missing")
        self._cache: dict[Path, Any] = {}
        self.envelope: dict = _inline_refs(_load_json(envelope_path), envelope_path, self._cache)
        self.paths: dict[tuple[str, int], Path] = {}
        for dept_dir in sorted(p for p in self.dir.iterdir() if p.is_dir()):
            if dept_dir.name in _NOT_DEPARTMENTS or dept_dir.name.startswith((".", "_")):
                continue
            for type_dir in sorted(p for p in dept_dir.iterdir() if p.is_dir()):
                for file in type_dir.glob("*.json"):
                    if file.stem.isdigit():
                        self.paths[(f"{dept_dir.name}.{type_dir.name}", int(file.stem))] = file
        versions: dict[str, list[int]] = {}
        for event_type, version in sorted(self.paths):
            versions.setdefault(event_type, []).append(version)
        self.event_types: dict[str, tuple[int, ...]] = {t: tuple(v) for t, v in versions.items()}
        self._payload: dict[tuple[str, int], dict] = {}
        self.fast: dict[tuple[str, int], Callable[[Any], bool]] = {}
        self._slow: dict[tuple[str, int], jsonschema.protocols.Validator] = {}

    @cached_property
    def person_event_types(self) -> frozenset[str]:
        """Types whose latest version is marked ``x-person-event: true``."""
        return frozenset(
            t
            for t, vs in self.event_types.items()
            if self.payload_schema(t, vs[-1]).get(PERSON_EVENT_KEYWORD)
        )

    def payload_schema(self, event_type: str, version: int) -> dict:
        key = (event_type, version)
        if key not in self._payload:
            if key not in self.paths:
                raise KeyError(f"no schema for {event_type} version {version}")
            path = self.paths[key]
            self._payload[key] = _inline_refs(_load_json(path), path, self._cache)
        return self._payload[key]

    def event_schema(self, event_type: str, version: int) -> dict:
        """The whole event: the envelope with this type's constants and payload, self-contained."""
        payload = self.payload_schema(event_type, version)
        schema = copy.deepcopy(self.envelope)
        schema["$id"] = (
            f"{schema.get('$id', '').rsplit('/envelope/', 1)[0]}/{event_type.replace('.', '/')}/{version}/event.json"
        )
        schema["title"] = f"{event_type} version {version}"
        props = schema["properties"]
        props["event_type"] = {"type": "string", "const": event_type}
        props["schema_version"] = {"type": "integer", "const": version}
        props["department"] = {"type": "string", "const": event_type.split(".", 1)[0]}
        props["payload"] = _strip_meta(payload)
        if payload.get(PERSON_EVENT_KEYWORD):
            # A person event: person_id is the fragment itself, not "or null", and required.
            props["person_id"] = next(alt for alt in props["person_id"]["anyOf"] if alt.get("type") != "null")
            schema["required"] = [*schema["required"], "person_id"]
        return schema

    def fast_validator(self, event_type: str, version: int) -> Callable[[Any], bool]:
        """The compiled ``is_valid`` of the whole event; KeyError for an unknown type or version."""
        key = (event_type, version)
        fn = self.fast.get(key)
        if fn is None:
            validator = jsonschema_rs.Draft7Validator(self.event_schema(event_type, version))
            fn = self.fast[key] = validator.is_valid
        return fn

    def fast_error(self, envelope: Any) -> str | None:
        """jsonschema-rs's own first error: the fallback when ``jsonschema`` finds none."""
        try:
            validator = jsonschema_rs.Draft7Validator(
                self.event_schema(envelope["event_type"], envelope["schema_version"])
            )
            error = next(iter(validator.iter_errors(envelope)), None)
        except Exception as exc:  # values JSON cannot carry (sets, objects, huge ints)
            return f"envelope: not a JSON document ({exc})"
        if error is None:
            return None
        where = _where(error.instance_path)
        return f"{where}: {error.message}" if where else error.message

    def slow_validator(self, event_type: str | None, version: int | None) -> jsonschema.protocols.Validator:
        key = (event_type, version)
        if key not in self._slow:
            schema = self.envelope if event_type is None else self.event_schema(event_type, version)
            self._slow[key] = _ReasonValidator(schema)
        return self._slow[key]


def _pattern_end_of_text(validator, pattern, instance, schema):
    """jsonschema's ``pattern`` with ``$`` as end of text, as in ECMA 262 and jsonschema-rs.

    In Python's ``re`` a final ``$`` also matches before a trailing newline, so
    ``"123456789012\\n"`` would pass ``^[0-9]{12}$``; ``\\Z`` does not.
    """
    if not validator.is_type(instance, "string"):
        return
    anchored = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    if not re.search(anchored, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_ReasonValidator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _pattern_end_of_text})


# --------------------------------------------------------------------------------------------
# Readable reasons


def _where(path: Iterator[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_reason(error: jsonschema.ValidationError) -> str:
    where = _where(error.absolute_path)
    prefix = f"{where}: " if where else ""
    if error.validator == "required":
        missing = next((r for r in error.validator_value if r not in error.instance), None)
        name = f"{where}.{missing}" if where else str(missing)
        return f"{name}: required field is missing"
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in allowed)
        keys = ", ".join(repr(k) for k in unknown)
        return (
            f"{prefix or 'envelope: '}unknown key{'s' if len(unknown) > 1 else ''} {keys} (not in the schema)"
        )
    if error.validator == "type" and isinstance(error.validator_value, str):
        return f"{prefix}{_short(error.instance)} is not of type {error.validator_value!r}"
    if error.validator == "anyOf" and where == "person_id":
        return f"person_id: {_short(error.instance)} is not a pseudonym (P + 32 lowercase hex) or null"
    if error.validator in ("minLength", "maxLength") and isinstance(error.instance, str):
        bound = "at least" if error.validator == "minLength" else "at most"
        return (
            f"{prefix}{_short(error.instance)} has {len(error.instance)} characters; "
            f"expected {bound} {error.validator_value}"
        )
    if error.validator == "pattern":
        meaning = error.schema.get("description", "").rstrip(".")
        expected = f": expected {meaning}" if meaning else ""
        return f"{prefix}{_short(error.instance)} does not match {error.validator_value!r}{expected}"
    if error.validator == "enum":
        return f"{prefix}{_short(error.instance)} is not one of {', '.join(map(str, error.validator_value))}"
    return f"{prefix}{error.message}"


def _first_error(validator: jsonschema.protocols.Validator, instance: Any) -> str | None:
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.validator)
    )
    if not errors:
        return None
    if len(errors) == 1:
        return _error_reason(errors[0])
    # best_match prefers the shallowest error, and the most telling one inside anyOf.
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return _error_reason(jsonschema.exceptions.best_match(errors)) + more


def _reason(schemas: SchemaSet, envelope: Any) -> str:
    """Why ``envelope`` fails; called only after the fast path rejected it."""
    if not isinstance(envelope, dict):
        kind = {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
            type(envelope), "a number" if isinstance(envelope, int | float) else type(envelope).__name__
        )
        return f"envelope: expected a JSON object, got {kind}"
    event_type = envelope.get("event_type")
    version = envelope.get("schema_version")
    if isinstance(event_type, str) and event_type not in schemas.event_types:
        return f"event_type: {_short(event_type)} is not a known event type"
    reason = _first_error(schemas.slow_validator(None, None), envelope)
    if reason:
        return reason
    # The envelope's own rules hold, so event_type is a known string and schema_version an int >= 1.
    versions = schemas.event_types[event_type]
    if version not in versions:
        known = ", ".join(map(str, versions))
        return f"schema_version: {version} is not a known version of {event_type} (known: {known})"
    prefix = event_type.split(".", 1)[0]
    if envelope["department"] != prefix:
        return (
            f"department: {envelope['department']!r} does not match the prefix of event_type {event_type!r}"
        )
    if event_type in schemas.person_event_types and envelope.get("person_id") is None:
        return f"person_id: required (not null) for the person event {event_type}"
    reason = _first_error(schemas.slow_validator(event_type, version), envelope)
    return reason or schemas.fast_error(envelope) or "envelope: does not match its schema"


# --------------------------------------------------------------------------------------------
# Checks JSON Schema cannot express


def _calendar_error(field: str, value: str) -> str | None:
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value)
    except ValueError as exc:
        return f"{field}: {value!r} is not a real date or time ({exc})"
    return None


def _check_registered(payload: dict) -> str | None:
    seen: set[str] = set()
    for i, member in enumerate(payload["members"]):
        if error := _calendar_error(f"payload.members[{i}].birth_date", member["birth_date"]):
            return error
        if member["person_id"] in seen:
            return f"payload.members[{i}].person_id: {member['person_id']!r} appears twice among the members"
        seen.add(member["person_id"])
    return None


def _check_joined(payload: dict) -> str | None:
    return _calendar_error("payload.birth_date", payload["birth_date"])


def _check_hospitalization(payload: dict) -> str | None:
    parts = ("basic_paid", "critical_illness_paid", "assistance_paid", "out_of_pocket")
    total = sum(payload[p] for p in parts)
    if abs(payload["total_cost"] - total) > HOSPITAL_SUM_TOLERANCE:
        return (
            f"payload.total_cost: {payload['total_cost']} is not the sum of {' + '.join(parts)} "
            f"= {round(total, 2)} (within ±{HOSPITAL_SUM_TOLERANCE:g} yuan)"
        )
    admitted, discharged = payload.get("admission_date"), payload.get("discharge_date")
    for name, value in (("admission_date", admitted), ("discharge_date", discharged)):
        if value is not None and (error := _calendar_error(f"payload.{name}", value)):
            return error
    if admitted and discharged and discharged < admitted:
        return f"payload.discharge_date: {discharged} is before admission_date {admitted}"
    return None


#: event_type -> check of a schema-valid payload, returning a reason or None (all versions).
SEMANTIC_CHECKS: dict[str, Callable[[dict], str | None]] = {
    "poverty_office.household_registered": _check_registered,
    "public_security.person_joined": _check_joined,
    "health_insurance.hospitalization_settled": _check_hospitalization,
}


# --------------------------------------------------------------------------------------------
# The public API


#: The schemas of ``schemas/``, loaded once (``warehouse.contract_sql`` derives SQL from them).
SCHEMA_SET = SchemaSet(SCHEMAS_DIR)

#: event type -> its schema versions, ascending.
EVENT_TYPES: dict[str, tuple[int, ...]] = SCHEMA_SET.event_types
#: Event types whose payload concerns one person: person_id must be present and not null.
PERSON_EVENT_TYPES: frozenset[str] = SCHEMA_SET.person_event_types

_fast_get = SCHEMA_SET.fast.get


def validate(envelope: dict) -> dict:
    """Check ``envelope`` against the contract; return it (the same object) or raise ContractError."""
    try:
        key = (envelope["event_type"], envelope["schema_version"])
        fn = _fast_get(key)
        if fn is None:
            fn = SCHEMA_SET.fast_validator(*key)
        valid = fn(envelope)
    except Exception:  # not a dict, unknown type or version, values JSON cannot carry
        valid = False
    if not valid:
        raise ContractError(_reason(SCHEMA_SET, envelope))
    occurred = envelope["occurred_at"]
    try:
        if len(occurred) == 10:
            date.fromisoformat(occurred)
        else:
            datetime.fromisoformat(occurred)
        datetime.fromisoformat(envelope["recorded_at"])
    except ValueError:
        raise ContractError(
            _calendar_error("occurred_at", occurred)
            or _calendar_error("recorded_at", envelope["recorded_at"])
        ) from None
    check = SEMANTIC_CHECKS.get(key[0])
    if check is not None and (reason := check(envelope["payload"])):
        raise ContractError(reason)
    return envelope


def decode(raw: bytes | bytearray | memoryview | str) -> dict:
    """Parse one message value (JSON, UTF-8) and validate it; ContractError on any failure."""
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"not valid JSON: {exc}") from None
    except TypeError:
        raise ContractError(f"not valid JSON: expected bytes or str, got {type(raw).__name__}") from None
    return validate(envelope)


def load_schema(event_type: str, version: int) -> dict:
    """The payload schema of ``event_type`` at ``version``, self-contained ($refs inlined).

    KeyError when there is no such type or version. ``event_schema`` gives the whole event.
    """
    return copy.deepcopy(SCHEMA_SET.payload_schema(event_type, version))


def event_schema(event_type: str, version: int) -> dict:
    """The whole event (envelope with this type's payload and constants), self-contained."""
    return SCHEMA_SET.event_schema(event_type, version)


def envelope_schema() -> dict:
    """The envelope schema, self-contained."""
    return copy.deepcopy(SCHEMA_SET.envelope)


# --------------------------------------------------------------------------------------------
# Compatibility of versions: a higher version only adds optional fields


def _describe(schema: dict) -> str:
    if "type" in schema:
        return repr(schema["type"])
    return ", ".join(sorted(schema)) or "any"


def _compare(old: dict, new: dict, where: str) -> Iterator[str]:
    old = {k: v for k, v in old.items() if k not in _DOC_KEYWORDS}
    new = {k: v for k, v in new.items() if k not in _DOC_KEYWORDS}
    if old.get("type") != new.get("type"):
        yield f"{where}: type changed from {_describe(old)} to {_describe(new)}"
        return
    nested = ("properties", "required", "items")
    if old.get("type") == "object":
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        for name, schema in old_props.items():
            if name not in new_props:
                yield f"{where}.{name}: field removed"
            else:
                yield from _compare(schema, new_props[name], f"{where}.{name}")
        for name in sorted(new_required - old_required):
            yield f"{where}.{name}: {'became required' if name in old_props else 'new field is required'}"
        for name in sorted(old_required - new_required):
            yield f"{where}.{name}: no longer required"
    if (
        old.get("type") == "array"
        and isinstance(old.get("items"), dict)
        and isinstance(new.get("items"), dict)
    ):
        yield from _compare(old["items"], new["items"], f"{where}[]")
    elif old.get("items") != new.get("items"):
        yield f"{where}: items changed"
    for keyword in sorted((set(old) | set(new)) - set(nested)):
        if old.get(keyword) != new.get(keyword):
            yield f"{where}: {keyword} changed from {old.get(keyword)!r} to {new.get(keyword)!r}"


def compatibility_problems(schemas_dir: Path | str = SCHEMAS_DIR) -> list[str]:
    """Every breach of "a new version only adds optional fields" in a schemas folder.

    Versions of a type must be 1..n; each version compared with the one before: no field removed,
    no type, enumeration, bound or pattern changed, no new required field, person-event flag kept.
    """
    schemas = SchemaSet(Path(schemas_dir))
    problems: list[str] = []
    for event_type, versions in schemas.event_types.items():
        if versions != tuple(range(1, len(versions) + 1)):
            problems.append(f"{event_type}: versions {list(versions)} are not 1..{len(versions)}")
        for old_v, new_v in zip(versions, versions[1:], strict=False):
            old, new = schemas.payload_schema(event_type, old_v), schemas.payload_schema(event_type, new_v)
            label = f"{event_type} {old_v}→{new_v}"
            if bool(old.get(PERSON_EVENT_KEYWORD)) != bool(new.get(PERSON_EVENT_KEYWORD)):
                problems.append(f"{label}: {PERSON_EVENT_KEYWORD} changed")
            problems.extend(f"{label}: {p}" for p in _compare(old, new, "payload"))
    return problems
