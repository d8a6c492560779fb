"""Snapshots see hard deletes on chdb: a row gone from the source is closed out.

dbt-clickhouse finds deleted (and new) rows by a LEFT JOIN whose unmatched side ``is null``;
without ``join_use_nulls`` ClickHouse fills that side with defaults, so no delete was ever seen.
"""

import pytest
from dbt.tests.util import run_dbt

_SNAPSHOT = """
{% snapshot gone %}
{{ config(target_schema=schema, unique_key='id', strategy='check', check_cols='all',
          hard_deletes='invalidate') }}
select * from {{ target.schema }}.src
{% endsnapshot %}
"""


class TestHardDeletesInvalidate:
    @pytest.fixture(scope="class")
    def snapshots(self):
        return {"gone.sql": _SNAPSHOT}

    def test_a_deleted_row_is_closed_out(self, project):
        # id 0 too: the value a non-Nullable join side defaults to, which must not count as a match
        project.run_sql("create table {schema}.src (id Int32, v String) engine = MergeTree order by id")
        project.run_sql("insert into {schema}.src values (0, 'a'), (1, 'b'), (2, 'c')")
        run_dbt(["snapshot"])
        project.run_sql("delete from {schema}.src where id in (0, 2)")
        run_dbt(["snapshot"])
        rows = project.run_sql(
            "select id, dbt_valid_to is null from {schema}.gone order by id, dbt_valid_from", fetch="all"
        )
        assert [tuple(r) for r in rows] == [(0, False), (1, True), (2, False)]
