"""dbt's incremental tests: unique keys, predicates, schema changes, microbatch, exclude columns."""

import pytest
from dbt.tests.adapter.incremental import test_incremental_unique_id as unique_id
from dbt.tests.adapter.incremental.test_incremental_merge_exclude_columns import BaseMergeExcludeColumns
from dbt.tests.adapter.incremental.test_incremental_microbatch import BaseMicrobatch
from dbt.tests.adapter.incremental.test_incremental_on_schema_change import BaseIncrementalOnSchemaChange
from dbt.tests.adapter.incremental.test_incremental_predicates import BaseIncrementalPredicates
from dbt.tests.adapter.incremental.test_incremental_unique_id import BaseIncrementalUniqueKey


def _expected_visits() -> str:
    """dbt's expected table in ClickHouse terms: a union takes no common type of Date and String
    literals (PostgreSQL casts them), and a seed's empty String cell is '' rather than NULL."""
    rows = [
        ("CT", "Hartford", "Hartford", "2022-02-14"),
        ("MA", "Suffolk", "Boston", "2020-02-12"),
        ("NJ", "Mercer", "Trenton", "2022-01-01"),
        ("NY", "Kings", "Brooklyn", "2021-04-02"),
        ("NY", "New York", "Manhattan", "2021-04-01"),
        ("PA", "Philadelphia", "Philadelphia", "2021-05-21"),
        ("CO", "Denver", "", "2021-06-18"),
    ]
    selects = [
        f"select '{s}' as state, '{c}' as county, '{t}' as city, toDate('{d}') as last_visit_date"
        for s, c, t, d in rows
    ]
    return "{{ config(materialized='table') }}\n" + "\nunion all\n".join(selects)


class TestIncrementalUniqueKey(BaseIncrementalUniqueKey):
    @pytest.fixture(scope="class")
    def models(self):
        models = {
            f"{name}.sql": getattr(unique_id, f"models__{name}_sql")
            for name in (
                "trinary_unique_key_list",
                "nontyped_trinary_unique_key_list",
                "unary_unique_key_list",
                "not_found_unique_key",
                "empty_unique_key_list",
                "no_unique_key",
                "empty_str_unique_key",
                "str_unique_key",
                "duplicated_unary_unique_key_list",
                "not_found_unique_key_list",
            )
        }
        models["expected"] = {
            "one_str__overwrite.sql": _expected_visits(),
            "unique_key_list__inplace_overwrite.sql": _expected_visits(),
        }
        return models


class TestIncrementalPredicates(BaseIncrementalPredicates):
    pass


class TestIncrementalOnSchemaChange(BaseIncrementalOnSchemaChange):
    pass


class TestMergeExcludeColumns(BaseMergeExcludeColumns):
    pass


class TestMicrobatch(BaseMicrobatch):
    pass
