"""dbt's ephemeral model tests.

Two of them compare the SQL dbt compiled with PostgreSQL's text. The ClickHouse text differs in
how dbt-clickhouse writes it: ``create or replace view`` in place (no ``__dbt_tmp`` and rename),
two-part backquoted names, each CTE reference quoted, and its ``-- end_of_sql`` marker. The
CTEs, their order and their sharing (what the tests are about) are dbt's.
"""

import re
from pathlib import Path

from dbt.tests.adapter.ephemeral.test_ephemeral import (
    BaseEphemeralErrorHandling,
    BaseEphemeralMulti,
    BaseEphemeralNested,
)
from dbt.tests.util import check_relations_equal, run_dbt


def _compiled(model: str) -> str:
    """The SQL dbt ran for ``model``, without digits (the schema's) or whitespace, as dbt compares."""
    sql = Path(f"target/run/test/models/{model}.sql").read_text()
    return "".join(re.sub(r"\d+", "", sql).split())


def _squeezed(sql: str) -> str:
    return "".join(sql.split())


class TestEphemeralMulti(BaseEphemeralMulti):
    def test_ephemeral_multi(self, project):
        run_dbt(["seed"])
        assert len(run_dbt(["run"])) == 3
        for model in ("dependent", "double_dependent", "super_dependent"):
            check_relations_equal(project.adapter, ["seed", model])
        assert _compiled("double_dependent") == _squeezed(
            "create or replace view `test_test_ephemeral`.`double_dependent` as ("
            "with __dbt__cte__base as (select * from test_test_ephemeral.seed), "
            "__dbt__cte__base_copy as (select * from `__dbt__cte__base`)"
            "-- base_copy just pulls from base. Make sure the listed"
            "-- graph of CTEs all share the same dbt_cte__base cte"
            "select * from `__dbt__cte__base` where gender = 'Male'"
            "union all"
            "select * from `__dbt__cte__base_copy` where gender = 'Female'"
            ")-- end_of_sql"
        )


class TestEphemeralNested(BaseEphemeralNested):
    def test_ephemeral_nested(self, project):
        assert len(run_dbt(["run"])) == 2
        assert _compiled("root_view") == _squeezed(
            "create or replace view `test_test_ephemeral`.`root_view` as ("
            "with __dbt__cte__ephemeral_level_two as (select * from `test_test_ephemeral`.`source_table`), "
            "__dbt__cte__ephemeral as (select * from `__dbt__cte__ephemeral_level_two`)"
            "select * from `__dbt__cte__ephemeral`"
            ")-- end_of_sql"
        )


class TestEphemeralErrorHandling(BaseEphemeralErrorHandling):
    pass
