"""Settings honoured on every path: per-query settings=, profile custom_settings, DDL, introspection."""

import pytest
from dbt.tests.util import relation_from_name, run_dbt
from dbt_common.exceptions import DbtDatabaseError

# join_use_nulls changes result types: a join's unmatched side becomes Nullable.
JOIN_SQL = "select 2 as n, r.v as v from (select 2 as n) l left join (select 1 as k, 1::UInt8 as v) r on l.n = r.k"


def _setting(client, name):
    return client.query(f"SELECT getSetting('{name}')").result_set[0][0]


class TestPerQuerySettings:
    def test_columns_in_query(self, project, client):
        types = {c.name: c.data_type for c in client.columns_in_query(JOIN_SQL, settings={"join_use_nulls": 1})}
        assert types["v"] == "Nullable(UInt8)"
        assert {c.name: c.data_type for c in client.columns_in_query(JOIN_SQL)}["v"] == "UInt8"

    def test_adapter_get_column_schema_from_query(self, project):
        with project.adapter.connection_named("settings"):
            cols = project.adapter.get_column_schema_from_query(JOIN_SQL, query_settings={"join_use_nulls": 1})
        assert {c.name: c.data_type for c in cols}["v"] == "Nullable(UInt8)"

    def test_query_and_command_then_session_restored(self, project, client):
        res = client.query(JOIN_SQL, settings={"join_use_nulls": 1})
        assert res.column_types[1] == "Nullable(UInt8)" and res.result_set == [(2, None)]
        assert _setting(client, "join_use_nulls") in (0, False)
        # DDL: the table takes the types the setting gives
        table = f"{project.test_schema}.ddl_with_settings"
        client.command(
            f"CREATE TABLE {table} ENGINE = MergeTree ORDER BY tuple() AS {JOIN_SQL}",
            settings={"join_use_nulls": 1},
        )
        described = dict(client.query(f"SELECT name, type FROM system.columns WHERE database = '{project.test_schema}' AND table = 'ddl_with_settings'").result_set)
        assert described["v"] == "Nullable(UInt8)"
        assert _setting(client, "join_use_nulls") in (0, False)

    def test_unknown_setting_is_an_error(self, project, client):
        with pytest.raises(DbtDatabaseError, match="UNKNOWN_SETTING"):
            client.query("SELECT 1", settings={"no_such_setting_here": 1})


_CONTRACT_MODEL = """
{{ config(materialized='table', query_settings={'join_use_nulls': 1}) }}
""" + JOIN_SQL

_CONTRACT_SCHEMA = """
version: 2
models:
  - name: contract_with_query_settings
    config:
      contract: {enforced: true}
    columns:
      - name: n
        data_type: UInt8
      - name: v
        data_type: Nullable(UInt8)
  - name: incremental_with_query_settings
    config:
      contract: {enforced: true}
      on_schema_change: fail
    columns:
      - name: n
        data_type: UInt8
      - name: v
        data_type: Nullable(UInt8)
"""

_INCREMENTAL_MODEL = """
{{ config(materialized='incremental', unique_key='n', query_settings={'join_use_nulls': 1}) }}
""" + JOIN_SQL


class TestModelQuerySettings:
    """The issue's case: a contract (and on_schema_change) on a model with query_settings."""

    @pytest.fixture(scope="class")
    def models(self):
        return {
            "contract_with_query_settings.sql": _CONTRACT_MODEL,
            "incremental_with_query_settings.sql": _INCREMENTAL_MODEL,
            "schema.yml": _CONTRACT_SCHEMA,
        }

    def test_contract_and_schema_change_see_the_settings_types(self, project):
        run_dbt(["run"])
        run_dbt(["run"])  # incremental run: on_schema_change compares the same types
        for name in ("contract_with_query_settings", "incremental_with_query_settings"):
            rows = project.run_sql(f"select v from {relation_from_name(project.adapter, name)}", fetch="all")
            assert [tuple(r) for r in rows] == [(None,)]


class TestProfileCustomSettings:
    @pytest.fixture(scope="class")
    def dbt_profile_target(self, dbt_profile_target):
        return {**dbt_profile_target, "custom_settings": {"join_use_nulls": 1}}

    @pytest.fixture(scope="class")
    def models(self):
        return {"joined.sql": "{{ config(materialized='table') }}\n" + JOIN_SQL}

    def test_session_settings_hold_for_ddl_and_introspection(self, project):
        run_dbt(["run"])
        with project.adapter.connection_named("cols"):
            cols = project.adapter.get_columns_in_relation(relation_from_name(project.adapter, "joined"))
        assert {c.name: c.data_type for c in cols}["v"] == "Nullable(UInt8)"
