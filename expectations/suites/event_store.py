"""Suite ``event_store``: the envelope rules, enumerations and amounts of events.md on ``events_latest``."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.contract import Contract, load_contract
from expectations.suites import CRITICAL, WARNING, Dataset, expect, ident, literal, literal_list
from fupin.topics import DEPARTMENTS

SUITE = "event_store"
TABLE = "events_latest"

EVENT_ID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
HOUSEHOLD_ID_PATTERN = r"^[0-9A-Za-z_-]{1,40}$"
PERSON_ID_PATTERN = r"^P[0-9a-f]{32}$"
REGION_CODE_PATTERN = r"^[0-9]{12}$"
HOSPITALIZATION = "health_insurance.hospitalization_settled"
RELOCATION = "housing.household_relocated"
HOSPITALIZATION_PARTS = ("basic_paid", "critical_illness_paid", "assistance_paid", "out_of_pocket")
#: A recording time this far past the ingestion time means a wrong clock at the department.
CLOCK_SKEW = "INTERVAL 1 DAY"
#: Fields that make an event's content: a resend may differ in recorded_at or source, never in these.
CONTENT = "tuple(event_type, schema_version, household_id, ifNull(person_id, ''), region_code, occurred_at, payload)"


def amount_column(path: tuple[str, ...]) -> str:
    return "payload." + ".".join(path)


def enum_columns(contract: Contract) -> dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """Column name -> (path, allowed values, event types); a path whose values differ by event type
    gets one column per type, named ``payload.<path>@<event_type>``."""
    per_path: dict[tuple[str, ...], int] = {}
    for path, _ in contract.enum_paths:
        per_path[path] = per_path.get(path, 0) + 1
    out = {}
    for (path, values), types in contract.enum_paths.items():
        if per_path[path] == 1:
            out[amount_column(path)] = (path, values, types)
        else:
            for t in types:
                out[f"{amount_column(path)}@{t}"] = (path, values, (t,))
    return out


def build(database: str, contract: Contract | None = None) -> Dataset:
    contract = contract or load_contract()
    db = database
    amounts = [
        f"if(event_type IN {literal_list(types)}, "
        f"JSONExtract(payload, {', '.join(literal(p) for p in path)}, 'Nullable(Float64)'), NULL) "
        f"AS {ident(amount_column(path))}"
        for path, types in contract.amount_paths.items()
    ]
    enums = [
        f"if(event_type IN {literal_list(types)}, "
        f"JSONExtract(payload, {', '.join(literal(p) for p in path)}, 'Nullable(String)'), NULL) AS {ident(name)}"
        for name, (path, _, types) in enum_columns(contract).items()
    ]
    parts = " + ".join(f"JSONExtractFloat(payload, {literal(p)})" for p in HOSPITALIZATION_PARTS)
    sql = f"""
        SELECT
            e.event_id AS event_id, e.event_type AS event_type, e.schema_version AS schema_version,
            e.department AS department,
            splitByChar('.', e.event_type)[1] AS event_type_department,
            concat(e.event_type, '/', toString(e.schema_version)) AS event_type_version,
            e.source_system AS source_system, e.household_id AS household_id, e.person_id AS person_id,
            e.region_code AS region_code,
            if(e.region_code IN (SELECT region_code FROM {ident(db, "reference_regions")} WHERE level = 'village'),
               NULL, e.region_code) AS unknown_village_code,
            if(e.event_type = {literal(RELOCATION)} AND JSONExtractString(e.payload, 'new_region_code') NOT IN
                   (SELECT region_code FROM {ident(db, "reference_regions")} WHERE level = 'village'),
               JSONExtractString(e.payload, 'new_region_code'), NULL) AS unknown_new_village_code,
            if(e.event_type IN {literal_list(contract.person_event_types)} AND e.person_id IS NULL,
               e.event_type, NULL) AS person_event_without_person_id,
            -- As UTC text: fixed width, so text order is time order, and a failure shows a readable time.
            toString(e.occurred_at) AS occurred_at, toString(e.recorded_at) AS recorded_at,
            if(e.recorded_at > e.ingested_at + {CLOCK_SKEW}, toString(e.recorded_at), NULL) AS recorded_in_future,
            c.contents AS event_id_contents,
            if(e.event_type = {literal(HOSPITALIZATION)},
               abs(JSONExtractFloat(e.payload, 'total_cost') - ({parts})), NULL) AS hospitalization_cost_gap
            {"".join(", " + column for column in [*amounts, *enums])}
        FROM {ident(db, "events_latest")} AS e
        LEFT JOIN (
            SELECT event_id, uniqExact({CONTENT}) AS contents FROM {ident(db, "events")} GROUP BY event_id
        ) AS c ON c.event_id = e.event_id
    """
    exps: list[gxe.Expectation] = [
        expect(
            gxe.ExpectColumnValuesToNotBeNull, CRITICAL, "every envelope field is present", column="event_id"
        ),
        expect(
            gxe.ExpectColumnValuesToMatchRegex,
            CRITICAL,
            "event_id is a UUID",
            column="event_id",
            regex=EVENT_ID_PATTERN,
        ),
        expect(
            gxe.ExpectColumnValuesToBeUnique,
            CRITICAL,
            "event_id is unique in events_latest",
            column="event_id",
        ),
        expect(
            gxe.ExpectColumnValuesToBeBetween,
            CRITICAL,
            "an event_id names one fact: every copy in the event store has the same content",
            column="event_id_contents",
            min_value=1,
            max_value=1,
        ),
        expect(
            gxe.ExpectColumnValuesToBeInSet,
            CRITICAL,
            "department is one of the ten of events.md",
            column="department",
            value_set=list(DEPARTMENTS),
        ),
        expect(
            gxe.ExpectColumnPairValuesToBeEqual,
            CRITICAL,
            "department matches the prefix of event_type",
            column_A="department",
            column_B="event_type_department",
        ),
        expect(
            gxe.ExpectColumnValuesToBeInSet,
            CRITICAL,
            "event_type is in the catalogue",
            column="event_type",
            value_set=list(contract.event_types),
        ),
        expect(
            gxe.ExpectColumnValuesToBeInSet,
            CRITICAL,
            "event_type at schema_version has a schema",
            column="event_type_version",
            value_set=list(contract.type_versions),
        ),
        expect(
            gxe.ExpectColumnValuesToBeBetween,
            CRITICAL,
            "schema_version is an integer ≥ 1",
            column="schema_version",
            min_value=1,
        ),
        expect(
            gxe.ExpectColumnValueLengthsToBeBetween,
            CRITICAL,
            "source_system has 1 to 64 characters",
            column="source_system",
            min_value=1,
            max_value=64,
        ),
        expect(
            gxe.ExpectColumnValuesToMatchRegex,
            CRITICAL,
            "household_id is 1–40 of [0-9A-Za-z_-]",
            column="household_id",
            regex=HOUSEHOLD_ID_PATTERN,
        ),
        expect(
            gxe.ExpectColumnValuesToMatchRegex,
            CRITICAL,
            "person_id is a pseudonym (P + 32 lowercase hex) or null, never a raw ID",
            column="person_id",
            regex=PERSON_ID_PATTERN,
        ),
        expect(
            gxe.ExpectColumnValuesToBeNull,
            CRITICAL,
            "person events carry a person_id",
            column="person_event_without_person_id",
        ),
        expect(
            gxe.ExpectColumnValuesToMatchRegex,
            CRITICAL,
            "region_code has 12 digits",
            column="region_code",
            regex=REGION_CODE_PATTERN,
        ),
        expect(
            gxe.ExpectColumnValuesToBeNull,
            CRITICAL,
            "region_code is a village of the reference regions",
            column="unknown_village_code",
        ),
        expect(
            gxe.ExpectColumnValuesToBeNull,
            CRITICAL,
            "a relocation's new_region_code is a village of the reference regions",
            column="unknown_new_village_code",
        ),
        expect(gxe.ExpectColumnValuesToNotBeNull, CRITICAL, "occurred_at is present", column="occurred_at"),
        expect(gxe.ExpectColumnValuesToNotBeNull, CRITICAL, "recorded_at is present", column="recorded_at"),
        expect(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB,
            CRITICAL,
            "occurred_at ≤ recorded_at: a fact is recorded after it happened",
            column_A="recorded_at",
            column_B="occurred_at",
            or_equal=True,
        ),
        expect(
            gxe.ExpectColumnValuesToBeBetween,
            CRITICAL,
            "hospitalization total_cost equals its four parts ± 1 yuan",
            column="hospitalization_cost_gap",
            min_value=0,
            max_value=1,
        ),
        expect(
            gxe.ExpectColumnValuesToBeNull,
            WARNING,
            "recorded_at is not more than a day after the warehouse received the event (clock skew)",
            column="recorded_in_future",
        ),
    ]
    exps += [
        expect(
            gxe.ExpectColumnValuesToBeBetween,
            CRITICAL,
            "amounts are yuan, ≥ 0",
            column=amount_column(path),
            min_value=0,
        )
        for path in contract.amount_paths
    ]
    exps += [
        expect(
            gxe.ExpectColumnValuesToBeInSet,
            CRITICAL,
            f"{name.removeprefix('payload.')} is one of {', '.join(values)}",
            column=name,
            value_set=list(values),
        )
        for name, (_, values, _) in enum_columns(contract).items()
    ]
    return Dataset(suite=SUITE, table=TABLE, sql=sql, expectations=exps, index_columns=["event_id"])
