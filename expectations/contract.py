"""What the quality suites need from the event contract (``fupin.contract``, built on ``schemas/``).

The suites follow the schemas rather than a copy of events.md, so that a new event type, version
or amount field is checked as soon as its schema lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class Contract:
    #: "<event_type>/<schema_version>" for every payload schema.
    type_versions: tuple[str, ...]
    #: Path inside the payload of every amount field -> the event types carrying it.
    amount_paths: dict[tuple[str, ...], tuple[str, ...]]
    #: Event types whose payload concerns one person: person_id is required.
    person_event_types: tuple[str, ...]
    #: Enumerated payload fields: (path, allowed values) -> the event types carrying it. A path with
    #: different value sets in different types (``kind``, ``reason``) has one entry per set.
    enum_paths: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[str, ...]] = field(default_factory=dict)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(sorted({tv.rsplit("/", 1)[0] for tv in self.type_versions}))


def amount_paths(schema: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of the amounts in a payload schema: every JSON ``number`` is yuan (events.md: "Amounts
    are yuan, numbers ≥ 0"; counts and years are integers), nested objects included."""
    found: list[tuple[str, ...]] = []
    for name, prop in (schema.get("properties") or {}).items():
        path = (*prefix, name)
        kind = prop.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if "number" in kinds:
            found.append(path)
        elif "object" in kinds:
            found.extend(amount_paths(prop, path))
    return found


def enum_paths(schema: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Paths and allowed values of the scalar enumerations in a payload schema (arrays left out)."""
    found: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for name, prop in (schema.get("properties") or {}).items():
        path = (*prefix, name)
        if isinstance(prop.get("enum"), list):
            found.append((path, tuple(str(v) for v in prop["enum"])))
        elif prop.get("type") == "object":
            found.extend(enum_paths(prop, path))
    return found


@lru_cache(maxsize=1)
def load_contract() -> Contract:
    from fupin import contract

    type_versions: list[str] = []
    amounts: dict[tuple[str, ...], set[str]] = {}
    enums: dict[tuple[tuple[str, ...], tuple[str, ...]], set[str]] = {}
    for event_type, versions in sorted(contract.EVENT_TYPES.items()):
        for version in versions:
            type_versions.append(f"{event_type}/{version}")
            for path in amount_paths(contract.load_schema(event_type, version)):
                amounts.setdefault(path, set()).add(event_type)
            for key in enum_paths(contract.load_schema(event_type, version)):
                enums.setdefault(key, set()).add(event_type)
    return Contract(
        type_versions=tuple(type_versions),
        amount_paths={p: tuple(sorted(ts)) for p, ts in sorted(amounts.items())},
        person_event_types=tuple(sorted(contract.PERSON_EVENT_TYPES)),
        enum_paths={k: tuple(sorted(ts)) for k, ts in sorted(enums.items())},
    )
