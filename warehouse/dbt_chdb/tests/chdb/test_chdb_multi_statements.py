"""Multi-statement SQL refused as a ClickHouse server refuses it, so both targets behave alike."""

import pytest
from dbt.adapters.chdb.statements import multi_statement_error, statement_end
from dbt.tests.util import run_dbt, run_dbt_and_capture
from dbt_common.exceptions import DbtDatabaseError


@pytest.mark.parametrize(
    "sql",
    [
        "select 1",
        "select 1;",
        "select 1 ;  \n -- trailing comment\n",
        "select 1; /* block */ ;",
        "select ';' as s, `a;b` as c, \"x;y\" as d",
        "select 'it''s; fine', 'esc\\'; still'",
        "select 1 -- ; not a statement\n",
        "select $$a;b$$",
        "INSERT INTO t FORMAT CSV\n1,\"a;b\"\n2,x; y\n",
    ],
)
def test_single_statements(sql):
    assert statement_end(sql) is None


@pytest.mark.parametrize(
    "sql, position",
    [
        ("select 1; select 2", 8),
        ("set x = 1;\ncreate table t as select 1", 9),
        ("select ';'; drop table t", 10),
        ("insert into t values (1); select 2", 24),
    ],
)
def test_multi_statements(sql, position):
    assert statement_end(sql) == position
    assert "Multi-statements are not allowed" in multi_statement_error(sql)


class TestMultiStatementsRefused:
    @pytest.fixture(scope="class")
    def seeds(self):
        return {"semicolons.csv": "id,text\n1,a;b\n2,\"c; select 1\"\n"}

    @pytest.fixture(scope="class")
    def models(self):
        return {
            "with_header.sql": "{{ config(materialized='table', sql_header='set join_use_nulls = 1;') }}\nselect 1 as id",
            "semicolon_in_literal.sql": "select 'a; b' as s -- ; c\n",
        }

    def test_client_refuses(self, project, client):
        with pytest.raises(DbtDatabaseError, match="Multi-statements are not allowed"):
            client.query("select 1; select 2")
        with pytest.raises(DbtDatabaseError, match="Multi-statements are not allowed"):
            client.command("select 1; drop database if exists x")
        assert client.query("select 1;").result_set == [(1,)]

    def test_models_and_seeds(self, project):
        run_dbt(["seed"])
        assert project.run_sql(f"select text from {project.test_schema}.semicolons order by id", fetch="all") == [
            ("a;b",),
            ("c; select 1",),
        ]
        results, log = run_dbt_and_capture(["run"], expect_pass=False)
        assert {r.node.name: r.status for r in results} == {"with_header": "error", "semicolon_in_literal": "success"}
        assert "Multi-statements are not allowed" in log
