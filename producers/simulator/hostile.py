"""A hostile department: raw Kafka messages that break the contract in every way the spec names.

From valid envelopes (the simulator's, or the schema examples under ``schemas/``) this module
makes raw messages (topic, key bytes or None, value bytes or None) of many kinds of bad input,
each labelled with the verdict the binding spec requires (events.md, "Validity: one judgement,
everywhere"):

- ``invalid``: must become a dead letter with a reason;
- ``duplicate``: the same event again (same content), changes nothing;
- ``valid_unknown_region``: a valid event in a village the reference data does not know: stored
  and counted as a consistency finding.

Every invalid message other than a conflicting duplicate carries a fresh ``event_id`` (when it
carries one at all), so a campaign can tell from the event store whether a bad message was stored
by mistake, and the order of bad messages against valid ones does not matter, except for the
ones that must follow their original (``after_event_id``), which :func:`interleave` respects.

``contract_catches`` says whether today's ``fupin.contract.decode`` alone already refuses the
value; the others need the whole judgement (key, topic, repeated keys, control characters, date
range, raw identifiers, conflicting duplicates).

Same seed, same inputs: same messages, same bytes.
"""

from __future__ import annotations

import copy
import random
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from fupin import PROJECT_ROOT
from fupin.privacy import check_digit
from fupin.topics import DEPARTMENTS

INVALID = "invalid"
DUPLICATE = "duplicate"
VALID_UNKNOWN_REGION = "valid_unknown_region"
VERDICTS = (INVALID, DUPLICATE, VALID_UNKNOWN_REGION)

#: A 12-digit village code no reference data holds (county 999999 does not exist).
UNKNOWN_REGION = "999999999201"
#: Payload fields the contract leaves free (events.md: checked like free text), besides source_system.
FREE_TEXT_FIELDS = ("reason", "cadre_id", "unit", "batch", "school_code", "program")
#: Payload fields that are amounts (numbers ≥ 0).
AMOUNT_FIELDS = (
    "net_income_per_capita", "monthly_amount", "amount", "monthly_wage", "total_cost", "basic_paid",
    "critical_illness_paid", "assistance_paid", "out_of_pocket",
)


class RawMessage(NamedTuple):
    """One message as it goes onto a topic; ``event_id`` is what the sender planted, if known."""

    topic: str
    key: bytes | None
    value: bytes | None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class HostileMessage:
    """A bad (or deliberately repeated) raw message with the spec's verdict for it."""

    kind: str
    verdict: str
    topic: str
    key: bytes | None
    value: bytes | None
    #: The event_id the message carries, when it has a readable one (fresh for invalid kinds).
    event_id: str | None
    #: For duplicates and conflicting duplicates: the valid event this one must come after.
    after_event_id: str | None
    #: True when today's ``fupin.contract.decode`` of ``value`` alone raises ContractError.
    contract_catches: bool

    def raw(self) -> RawMessage:
        return RawMessage(self.topic, self.key, self.value, self.event_id)


# --------------------------------------------------------------------------------------------
# Helpers


class _Ctx:
    """What a kind's maker may use: the seeded rng, the topic prefix, other households."""

    def __init__(self, rng: random.Random, topic_prefix: str, households: Sequence[str]) -> None:
        self.rng = rng
        self.topic_prefix = topic_prefix
        self.households = households

    def topic(self, department: str) -> str:
        return f"{self.topic_prefix}.events.{department}"

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def resident_id_18(self) -> str:
        first = f"431224{self.rng.randint(1950, 2005)}{self.rng.randint(1, 12):02d}{self.rng.randint(1, 28):02d}"
        first += f"{self.rng.randint(0, 999):03d}"
        return first + check_digit(first)

    def resident_id_15(self) -> str:
        return f"431224{self.rng.randint(50, 99)}{self.rng.randint(1, 12):02d}{self.rng.randint(1, 28):02d}" \
            f"{self.rng.randint(0, 999):03d}"

    def mobile(self) -> str:
        return f"1{self.rng.choice('3456789')}{self.rng.randint(0, 999_999_999):09d}"

    def other_household(self, hid: str) -> str:
        others = [h for h in self.households[:50] if h != hid]
        return self.rng.choice(others) if others else hid + "-other"


def _dumps(env: Any) -> bytes:
    return orjson.dumps(env)


def _fresh(env: dict, ctx: _Ctx) -> dict:
    """A deep copy with a new event_id: a bad message never shares an id with a valid one."""
    out = copy.deepcopy(env)
    out["event_id"] = ctx.uuid()
    return out


def _hid_key(env: dict) -> bytes:
    return str(env["household_id"]).encode()


def _replace_once(raw: bytes, old: bytes, new: bytes) -> bytes:
    if old not in raw:
        raise _NotApplicable(f"{old!r} not in message")
    return raw.replace(old, new, 1)


class _NotApplicable(Exception):
    """This envelope cannot carry this kind (e.g. no amount to make negative): try another."""


#: What a kind's maker returns: (topic or None for the envelope's own, key, value, event_id, after).
_Made = tuple[str | None, bytes | None, bytes | None, str | None, str | None]
_Maker = Callable[[dict, _Ctx], _Made]


def _simple(mutate: Callable[[dict, _Ctx], dict | bytes]) -> _Maker:
    """A kind that only changes the value: fresh event_id, the envelope's own topic and key."""

    def make(env: dict, ctx: _Ctx) -> _Made:
        fresh = _fresh(env, ctx)
        out = mutate(fresh, ctx)
        value = out if isinstance(out, bytes) else _dumps(out)
        return None, _hid_key(env), value, fresh["event_id"], None

    return make


# --------------------------------------------------------------------------------------------
# The kinds


def _set(path: str, value: Any) -> Callable[[dict, _Ctx], dict]:
    def mutate(env: dict, ctx: _Ctx) -> dict:
        env[path] = value
        return env

    return mutate


def _not_json(env: dict, ctx: _Ctx) -> bytes:
    return b"household " + _hid_key(env) + b" registered; see attached spreadsheet"


def _not_utf8(env: dict, ctx: _Ctx) -> bytes:
    # GBK bytes of a Chinese reason where UTF-8 was promised: a classic of county systems.
    env["source_system"] = "SYSTEM-PLACEHOLDER"
    return _replace_once(_dumps(env), b"SYSTEM-PLACEHOLDER", "民政系统".encode("gbk"))


def _invalid_utf8_key(env: dict, ctx: _Ctx) -> _Made:
    fresh = _fresh(env, ctx)
    return None, b"\xff\xfe" + _hid_key(env), _dumps(fresh), fresh["event_id"], None


def _null_key(env: dict, ctx: _Ctx) -> _Made:
    fresh = _fresh(env, ctx)
    return None, None, _dumps(fresh), fresh["event_id"], None


def _key_mismatch(env: dict, ctx: _Ctx) -> _Made:
    fresh = _fresh(env, ctx)
    return None, ctx.other_household(env["household_id"]).encode(), _dumps(fresh), fresh["event_id"], None


def _empty_value(env: dict, ctx: _Ctx) -> _Made:
    return None, _hid_key(env), b"", None, None


def _tombstone(env: dict, ctx: _Ctx) -> _Made:
    return None, _hid_key(env), None, None, None


def _json_array(env: dict, ctx: _Ctx) -> bytes:
    return _dumps([env])


def _json_string(env: dict, ctx: _Ctx) -> bytes:
    return _dumps(_dumps(env).decode())  # the envelope double-encoded, as a JSON string


def _json_number(env: dict, ctx: _Ctx) -> bytes:
    return b"20210101"


def _truncated(env: dict, ctx: _Ctx) -> bytes:
    raw = _dumps(env)
    return raw[: ctx.rng.randint(len(raw) // 3, len(raw) - 2)]


def _repeated_key_top(env: dict, ctx: _Ctx) -> bytes:
    # The first region_code is a lie that a last-one-wins parser silently drops.
    return b'{"region_code":"' + UNKNOWN_REGION.encode() + b'",' + _dumps(env)[1:]


def _repeated_key_payload(env: dict, ctx: _Ctx) -> bytes:
    if not env["payload"]:
        raise _NotApplicable("empty payload")
    first = next(iter(env["payload"]))
    dup = b'"payload":{' + _dumps(first) + b":" + _dumps(env["payload"][first]) + b","
    return _replace_once(_dumps(env), b'"payload":{', dup)


def _control(char: str, raw: bool) -> Callable[[dict, _Ctx], bytes]:
    def mutate(env: dict, ctx: _Ctx) -> bytes:
        env["source_system"] = "SYSTEM-PLACEHOLDER"
        escaped = orjson.dumps("sys" + char + "tem")[1:-1]  # \u0000 or \u0007 as a JSON escape
        new = ("sys" + char + "tem").encode() if raw else escaped
        return _replace_once(_dumps(env), b"SYSTEM-PLACEHOLDER", new)

    return mutate


def _version_literal(literal: bytes) -> Callable[[dict, _Ctx], bytes]:
    def mutate(env: dict, ctx: _Ctx) -> bytes:
        raw = _dumps(env)
        old = b'"schema_version":' + str(env["schema_version"]).encode()
        return _replace_once(raw, old, b'"schema_version":' + literal)

    return mutate


def _unknown_event_type(env: dict, ctx: _Ctx) -> dict:
    env["event_type"] = f"{env['department']}.household_teleported"
    return env


def _department_mismatch(env: dict, ctx: _Ctx) -> dict:
    env["department"] = next(d for d in DEPARTMENTS if d != env["department"])
    return env


def _wrong_topic(env: dict, ctx: _Ctx) -> _Made:
    fresh = _fresh(env, ctx)
    other = ctx.rng.choice([d for d in DEPARTMENTS if d != env["department"]])
    return ctx.topic(other), _hid_key(env), _dumps(fresh), fresh["event_id"], None


def _occurred(value: str) -> Callable[[dict, _Ctx], dict]:
    def mutate(env: dict, ctx: _Ctx) -> dict:
        env["occurred_at"] = value
        return env

    return mutate


def _occurred_after_recorded(env: dict, ctx: _Ctx) -> dict:
    recorded = datetime.fromisoformat(env["recorded_at"])
    env["occurred_at"] = (recorded + timedelta(days=ctx.rng.randint(3, 400))).date().isoformat()
    return env


def _recorded_year_9999(env: dict, ctx: _Ctx) -> dict:
    env["recorded_at"] = "9999-12-31T23:59:59+08:00"
    return env


def _recorded_without_offset(env: dict, ctx: _Ctx) -> dict:
    env["recorded_at"] = datetime.fromisoformat(env["recorded_at"]).replace(tzinfo=None).isoformat()
    return env


def _payload_date_1899(env: dict, ctx: _Ctx) -> dict:
    members = env["payload"].get("members")
    if members:
        members[0]["birth_date"] = "1899-12-31"
    elif "birth_date" in env["payload"]:
        env["payload"]["birth_date"] = "1899-12-31"
    else:
        raise _NotApplicable("no date in the payload")
    return env


def _unknown_payload_key(env: dict, ctx: _Ctx) -> dict:
    env["payload"]["note_from_clerk"] = "checked by phone"
    return env


def _unknown_envelope_key(env: dict, ctx: _Ctx) -> dict:
    env["operator"] = "clerk-07"
    return env


def _missing_envelope_field(env: dict, ctx: _Ctx) -> dict:
    del env[ctx.rng.choice(["event_type", "schema_version", "department", "region_code", "occurred_at",
                            "recorded_at", "payload", "source_system"])]
    return env


def _missing_payload_field(env: dict, ctx: _Ctx) -> dict:
    if not env["payload"]:
        raise _NotApplicable("empty payload")
    del env["payload"][ctx.rng.choice(sorted(env["payload"]))]
    # A field that was optional is no bad input: only payloads whose every key is required qualify.
    if env["event_type"] in ("poverty_office.income_assessed", "poverty_office.support_measure_recorded",
                             "health_insurance.hospitalization_settled"):
        raise _NotApplicable("payload has optional fields")
    return env


def _negative_amount(env: dict, ctx: _Ctx) -> dict:
    fields = [f for f in AMOUNT_FIELDS if isinstance(env["payload"].get(f), int | float)]
    if not fields:
        raise _NotApplicable("no amount")
    env["payload"][ctx.rng.choice(fields)] = -round(ctx.rng.uniform(1, 5000), 2)
    return env


def _wrong_type(env: dict, ctx: _Ctx) -> dict:
    payload = env["payload"]
    if not payload:
        env["payload"] = []
        return env
    name = ctx.rng.choice(sorted(payload))
    value = payload[name]
    payload[name] = (
        123 if isinstance(value, str) else "yes" if isinstance(value, bool)
        else str(value) if isinstance(value, int | float) else {"items": value} if isinstance(value, list)
        else [value]
    )
    return env


def _person_without_id(env: dict, ctx: _Ctx) -> dict:
    if not env.get("person_id"):
        raise _NotApplicable("not a person event")
    if ctx.rng.random() < 0.5:
        env["person_id"] = None
    else:
        del env["person_id"]
    return env


def _overlong_source_system(env: dict, ctx: _Ctx) -> dict:
    env["source_system"] = "county-" + "x" * 90
    return env


def _overlong_household_id(env: dict, ctx: _Ctx) -> _Made:
    fresh = _fresh(env, ctx)
    fresh["household_id"] = (env["household_id"] + "-" + "9" * 40)[:41]
    return None, fresh["household_id"].encode(), _dumps(fresh), fresh["event_id"], None


def _raw_identifier(make_id: Callable[[_Ctx], str]) -> Callable[[dict, _Ctx], dict]:
    def mutate(env: dict, ctx: _Ctx) -> dict:
        fields = [f for f in FREE_TEXT_FIELDS if isinstance(env["payload"].get(f), str)]
        text = f"经办 {make_id(ctx)} 核实"
        if fields and ctx.rng.random() < 0.7:
            env["payload"][ctx.rng.choice(fields)] = text
        else:
            env["source_system"] = f"sys-{make_id(ctx)}"
        return env

    return mutate


def _raw_id_as_person_id(env: dict, ctx: _Ctx) -> dict:
    env["person_id"] = ctx.resident_id_18()
    return env


def _deep_nesting(env: dict, ctx: _Ctx) -> bytes:
    depth = 5000
    return _replace_once(_dumps(env), b'"payload":{', b'"payload":{"extra":' + b"[" * depth + b"]" * depth + b",")


def _huge(env: dict, ctx: _Ctx) -> dict:
    env["source_system"] = "x" * (1_100_000 + ctx.rng.randint(0, 1000))  # > 1 MB, beyond maxLength
    return env


def _bom(env: dict, ctx: _Ctx) -> bytes:
    return b"\xef\xbb\xbf" + _dumps(env)


def _non_finite(literal: bytes) -> Callable[[dict, _Ctx], bytes]:
    def mutate(env: dict, ctx: _Ctx) -> bytes:
        return _version_literal(literal)(env, ctx)

    return mutate


def _number_overflow(env: dict, ctx: _Ctx) -> bytes:
    return _version_literal(b"1e999")(env, ctx)


def _bad_event_id(env: dict, ctx: _Ctx) -> dict:
    env["event_id"] = "evt-" + str(ctx.rng.randint(0, 10**9))
    return env


def _conflicting_duplicate(env: dict, ctx: _Ctx) -> _Made:
    """Same event_id, same household, other content: the first stays, this is a dead letter."""
    other = copy.deepcopy(env)
    fields = [f for f in AMOUNT_FIELDS if isinstance(other["payload"].get(f), int | float)]
    if fields and ctx.rng.random() < 0.5:
        f = ctx.rng.choice(fields)
        other["payload"][f] = round(other["payload"][f] + ctx.rng.randint(1, 900), 2)
        if env["event_type"] == "health_insurance.hospitalization_settled":
            raise _NotApplicable("would break the sum rule instead")
    else:
        recorded = datetime.fromisoformat(other["recorded_at"])
        other["recorded_at"] = (recorded + timedelta(seconds=ctx.rng.randint(1, 86_400))).isoformat()
    return None, _hid_key(env), _dumps(other), env["event_id"], env["event_id"]


def _duplicate(env: dict, ctx: _Ctx) -> _Made:
    return None, _hid_key(env), _dumps(env), env["event_id"], env["event_id"]


def _duplicate_reserialized(env: dict, ctx: _Ctx) -> _Made:
    """The same content with another key order and spacing: still the same event."""
    items = list(env.items())
    ctx.rng.shuffle(items)
    value = orjson.dumps(dict(items), option=orjson.OPT_INDENT_2)
    return None, _hid_key(env), value, env["event_id"], env["event_id"]


def _valid_unknown_region(env: dict, ctx: _Ctx) -> _Made:
    """A benign, valid event of a new household in a village no reference data knows."""
    hid = f"HXU-{ctx.rng.getrandbits(40):010x}"
    new = {
        "event_id": ctx.uuid(), "event_type": "water.water_assessed", "schema_version": 1,
        "department": "water", "source_system": "water-hostile", "household_id": hid, "person_id": None,
        "region_code": UNKNOWN_REGION, "occurred_at": env["occurred_at"][:10],
        "recorded_at": env["recorded_at"], "payload": {"safe": True, "issues": []},
    }
    return ctx.topic("water"), hid.encode(), _dumps(new), new["event_id"], None


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    verdict: str
    contract_catches: bool
    make: _Maker
    #: The rule of the spec's validity section (or contract) that the kind breaks.
    rule: str


def _kinds() -> tuple[Kind, ...]:
    s = _simple
    rid18: Callable[[_Ctx], str] = _Ctx.resident_id_18
    rid15: Callable[[_Ctx], str] = _Ctx.resident_id_15
    mob: Callable[[_Ctx], str] = _Ctx.mobile
    table: list[tuple[str, str, bool, _Maker, str]] = [
        ("not_json", INVALID, True, s(_not_json), "not UTF-8 JSON"),
        ("not_utf8_value", INVALID, True, s(_not_utf8), "not UTF-8 JSON"),
        ("invalid_utf8_key", INVALID, False, _invalid_utf8_key, "key differs from household_id"),
        ("null_key", INVALID, False, _null_key, "key missing"),
        ("key_mismatch", INVALID, False, _key_mismatch, "key differs from household_id"),
        ("empty_value", INVALID, True, _empty_value, "not UTF-8 JSON"),
        ("tombstone", INVALID, True, _tombstone, "not UTF-8 JSON (no value)"),
        ("json_array", INVALID, True, s(_json_array), "schema: envelope is an object"),
        ("json_string", INVALID, True, s(_json_string), "schema: envelope is an object"),
        ("json_number", INVALID, True, s(_json_number), "schema: envelope is an object"),
        ("truncated_json", INVALID, True, s(_truncated), "not UTF-8 JSON"),
        ("repeated_key_top", INVALID, False, s(_repeated_key_top), "repeats a key"),
        ("repeated_key_payload", INVALID, False, s(_repeated_key_payload), "repeats a key"),
        ("control_nul_escaped", INVALID, False, s(_control("\u0000", raw=False)), "control character"),
        ("control_bel_escaped", INVALID, False, s(_control("\u0007", raw=False)), "control character"),
        ("control_nul_raw", INVALID, True, s(_control("\u0000", raw=True)), "control character"),
        ("control_bel_raw", INVALID, True, s(_control("\u0007", raw=True)), "control character"),
        ("schema_version_1.0", INVALID, False, s(_version_literal(b"1.0")), "integer literal version"),
        ("schema_version_1e0", INVALID, False, s(_version_literal(b"1e0")), "integer literal version"),
        ("schema_version_string", INVALID, True, s(_version_literal(b'"1"')), "integer literal version"),
        ("schema_version_0", INVALID, True, s(_version_literal(b"0")), "schema: version ≥ 1"),
        ("schema_version_999", INVALID, True, s(_version_literal(b"999")), "unknown version"),
        ("unknown_event_type", INVALID, True, s(_unknown_event_type), "unknown type"),
        ("department_mismatch", INVALID, True, s(_department_mismatch), "department = event_type prefix"),
        ("wrong_topic", INVALID, False, _wrong_topic, "department does not belong on the topic"),
        ("occurred_year_0001", INVALID, False, s(_occurred("0001-01-01T00:00:00Z")), "dates 1900–2299"),
        ("occurred_year_1899", INVALID, False, s(_occurred("1899-12-31")), "dates 1900–2299"),
        ("occurred_year_2300", INVALID, False, s(_occurred("2300-01-01")), "dates 1900–2299"),
        ("occurred_year_9999", INVALID, False, s(_occurred("9999-12-31T23:59:59Z")), "dates 1900–2299"),
        ("occurred_after_recorded", INVALID, False, s(_occurred_after_recorded), "occurred ≤ recorded + 1 day"),
        ("recorded_year_9999", INVALID, False, s(_recorded_year_9999), "dates 1900–2299"),
        ("recorded_without_offset", INVALID, True, s(_recorded_without_offset), "schema: offset"),
        ("impossible_date", INVALID, True, s(_occurred("2021-02-30")), "real calendar date"),
        ("payload_date_1899", INVALID, False, s(_payload_date_1899), "dates 1900–2299"),
        ("unknown_payload_key", INVALID, True, s(_unknown_payload_key), "schema: unknown keys"),
        ("unknown_envelope_key", INVALID, True, s(_unknown_envelope_key), "schema: unknown keys"),
        ("missing_envelope_field", INVALID, True, s(_missing_envelope_field), "schema: required"),
        ("missing_payload_field", INVALID, True, s(_missing_payload_field), "schema: required"),
        ("negative_amount", INVALID, True, s(_negative_amount), "schema: amounts ≥ 0"),
        ("wrong_type", INVALID, True, s(_wrong_type), "schema: types"),
        ("person_event_without_person_id", INVALID, True, s(_person_without_id), "person_id required"),
        ("overlong_source_system", INVALID, True, s(_overlong_source_system), "schema: ≤ 64"),
        ("overlong_household_id", INVALID, True, _overlong_household_id, "schema: ≤ 40"),
        ("raw_resident_id_18", INVALID, False, s(_raw_identifier(rid18)), "raw identifier"),
        ("raw_resident_id_15", INVALID, False, s(_raw_identifier(rid15)), "raw identifier"),
        ("raw_mobile", INVALID, False, s(_raw_identifier(mob)), "raw identifier"),
        ("raw_id_as_person_id", INVALID, True, s(_raw_id_as_person_id), "schema: person_id pseudonym"),
        ("bad_event_id", INVALID, True, s(_bad_event_id), "schema: UUID"),
        ("conflicting_duplicate", INVALID, False, _conflicting_duplicate, "conflicting duplicate"),
        ("deep_nesting", INVALID, True, s(_deep_nesting), "not UTF-8 JSON (too deep)"),
        ("huge_message", INVALID, True, s(_huge), "schema: ≤ 64 (a > 1 MB message)"),
        ("bom_prefix", INVALID, True, s(_bom), "not UTF-8 JSON (BOM)"),
        ("nan_literal", INVALID, True, s(_non_finite(b"NaN")), "not UTF-8 JSON"),
        ("infinity_literal", INVALID, True, s(_non_finite(b"-Infinity")), "not UTF-8 JSON"),
        ("number_overflow", INVALID, True, s(_number_overflow), "not UTF-8 JSON"),
        ("duplicate", DUPLICATE, False, _duplicate, "same event again"),
        ("duplicate_reserialized", DUPLICATE, False, _duplicate_reserialized, "same content again"),
        ("valid_unknown_region", VALID_UNKNOWN_REGION, False, _valid_unknown_region, "unknown region is valid"),
    ]
    return tuple(Kind(*row) for row in table)


KINDS: tuple[Kind, ...] = _kinds()
KIND_BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
INVALID_KINDS: tuple[str, ...] = tuple(k.name for k in KINDS if k.verdict == INVALID)


# --------------------------------------------------------------------------------------------
# The corpus


def schema_examples(schemas_dir: Path = PROJECT_ROOT / "schemas") -> list[dict]:
    """The valid examples shipped with the schemas (``examples/<version>/valid-*.json``), sorted."""
    return [orjson.loads(p.read_bytes()) for p in sorted(schemas_dir.glob("*/*/examples/*/valid-*.json"))]


def corpus(seed: int, n: int, valid_envelopes: Sequence[dict], topic_prefix: str = "fupin",
           kinds: Iterable[str] | None = None, max_huge: int = 5) -> list[HostileMessage]:
    """``n`` hostile messages, the kinds in turn (each about n/len(kinds) times), from the envelopes.

    Bases are drawn from ``valid_envelopes``; a kind that none of the drawn bases can carry (a
    payload date, a person event) falls back to the schema examples. Duplicates and conflicting
    duplicates are always of an envelope in ``valid_envelopes`` (they must follow it). At most
    ``max_huge`` messages of more than 1 MB are made, so a large corpus stays small in memory.
    """
    if not valid_envelopes:
        raise ValueError("need at least one valid envelope")
    rng = random.Random(seed)
    households = sorted({str(e["household_id"]) for e in valid_envelopes[:1000]})
    ctx = _Ctx(rng, topic_prefix, households)
    chosen = [KIND_BY_NAME[k] for k in kinds] if kinds is not None else list(KINDS)
    fallback = schema_examples()
    out: list[HostileMessage] = []
    huge = 0
    for i in range(n):
        kind = chosen[i % len(chosen)]
        if kind.name == "huge_message":
            if huge >= max_huge:
                kind = KIND_BY_NAME["overlong_source_system"]
            huge += 1
        must_follow = kind.verdict == DUPLICATE or kind.name == "conflicting_duplicate"
        made: _Made | None = None
        drawn = [valid_envelopes[rng.randrange(len(valid_envelopes))] for _ in range(200 if must_follow else 20)]
        for base in drawn if must_follow else [*drawn, *rng.sample(fallback, len(fallback))]:
            try:
                made = kind.make(base, ctx)
                break
            except _NotApplicable:
                continue
        if made is None:
            raise ValueError(f"no envelope can carry the kind {kind.name!r}")
        topic, key, value, event_id, after = made
        out.append(HostileMessage(kind.name, kind.verdict, topic or ctx.topic(base["department"]), key, value,
                                  event_id, after, kind.contract_catches))
    return out


def valid_messages(envelopes: Iterable[dict], topic_prefix: str = "fupin") -> list[RawMessage]:
    """The raw messages a well-behaved department sends for these envelopes."""
    return [RawMessage(f"{topic_prefix}.events.{e['department']}", str(e["household_id"]).encode(),
                       _dumps(e), e["event_id"]) for e in envelopes]


def interleave(valid: Sequence[RawMessage], bad: Sequence[HostileMessage],
               seed: int) -> list[RawMessage | HostileMessage]:
    """The valid messages in their order, each bad one at a random place; a (conflicting)
    duplicate after the valid message it repeats (absent originals: at the end)."""
    rng = random.Random(seed)
    index = {m.event_id: i for i, m in enumerate(valid) if m.event_id is not None}
    n = len(valid)
    placed: list[tuple[float, int, HostileMessage]] = []
    for j, m in enumerate(bad):
        lo = index[m.after_event_id] + 1 if m.after_event_id in index else (n if m.after_event_id else 0)
        placed.append((rng.uniform(lo, n) if lo < n else float(n), j, m))
    placed.sort(key=lambda t: (t[0], t[1]))
    out: list[RawMessage | HostileMessage] = []
    k = 0
    for i, v in enumerate(valid):
        while k < len(placed) and placed[k][0] <= i:
            out.append(placed[k][2])
            k += 1
        out.append(v)
    out.extend(p[2] for p in placed[k:])
    return out


_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"]{1,80})"')


def planted_event_id(value: bytes | None) -> str | None:
    """The first event_id written in raw bytes (also in a message that is not JSON)."""
    if not value:
        return None
    m = _EVENT_ID.search(value)
    return m.group(1).decode("utf-8", "replace") if m else None
