"""dbt's incremental tests: unique keys, predicates, schema changes, microbatch, exclude columns."""

import pytest
from dbt.tests.adapter.incremental import test_incremental_unique_id as unique_id
from dbt.tests.adapter.incremental.test_incremental_merge_exclude_columns import BaseMergeExcludeColumns
from dbt.tests.adapter.incremental.test_incremental_microbatch import BaseMicrobatch
from dbt.tests.adapter.incremental.test_incremental_on_schema_change import BaseIncrementalOnSchemaChange
from dbt.tests.adapter.incremental.test_incremental_predicates import BaseIncrementalPredicates
from dbt.tests.adapter.incremental.test_incremental_unique_id import BaseIncrementalUniqueKey
from dbt.tests.util import run_dbt


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


def _default_not_null(sql: str) -> str:
    """dbt's expected table with ClickHouse's value for rows that predate a column: the added
    column is a non-Nullable String there, so its old rows hold '' (PostgreSQL: NULL)."""
    for column in ("field2", "field3", "field4"):
        sql = sql.replace(f"then null else {column} end", f"then '' else toString({column}) end")
        sql = sql.replace(f"THEN NULL ELSE {column} END", f"THEN '' ELSE toString({column}) END")
    assert "null" not in sql.lower().replace("--", ""), sql
    return sql


class TestIncrementalOnSchemaChange(BaseIncrementalOnSchemaChange):
    @pytest.fixture(scope="class")
    def models(self):
        models = super().models.__wrapped__(self)
        for name in (
            "incremental_append_new_columns_target.sql",
            "incremental_sync_all_columns_target.sql",
            "incremental_append_new_columns_remove_one_target.sql",
        ):
            models[name] = _default_not_null(models[name])
        return models

    def test_run_incremental_fail_on_schema_change(self, project):
        """dbt-clickhouse fails the run as dbt does, with a Runtime (not Compilation) Error."""
        select = "model_a incremental_fail"
        run_dbt(["run", "--models", select, "--full-refresh"])
        results = run_dbt(["run", "--models", select], expect_pass=False)
        message = next(r.message for r in results if r.node.name == "incremental_fail")
        assert "The source and target schemas on this incremental model are out of sync" in message


class TestMergeExcludeColumns(BaseMergeExcludeColumns):
    pass


class TestMicrobatch(BaseMicrobatch):
    pass
