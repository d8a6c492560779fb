"""Hooks with ``transaction: false`` run on chdb: no ``commit;`` is sent before them.

dbt's own run_hooks sends one, and ClickHouse (embedded or server) refuses a COMMIT outside a
transaction, so such a hook failed its model. The hooks still run in dbt's order: before the
model's in-transaction pre-hooks, after its in-transaction post-hooks.
"""

import pytest
from dbt.tests.util import run_dbt

_LOG_TABLE = "create table {schema}.hook_log (step String, at DateTime64(6) default now64(6)) engine = Log"


def _log(step: str) -> str:
    return f"insert into {{{{ this.schema }}}}.hook_log (step) values ('{step}')"


class TestHooksOutsideTransaction:
    @pytest.fixture(scope="class")
    def models(self):
        return {
            "hooked.sql": "{{ config(materialized='table', pre_hook=[before_begin(\""
            + _log("pre outside")
            + '"), "'
            + _log("pre inside")
            + '"], post_hook=[after_commit("'
            + _log("post outside")
            + '"), "'
            + _log("post inside")
            + '"]) }}\nselect 1 as id'
        }

    def test_hooks_run_in_order_without_commit(self, project):
        project.run_sql(_LOG_TABLE)
        results = run_dbt(["run"])
        assert [r.status for r in results] == ["success"]
        steps = project.run_sql(f"select step from {project.test_schema}.hook_log order by at", fetch="all")
        assert [s[0] for s in steps] == ["pre outside", "pre inside", "post inside", "post outside"]
