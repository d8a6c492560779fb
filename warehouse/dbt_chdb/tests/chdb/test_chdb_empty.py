"""``--empty`` with DDL macros: alter_column_type names the relation, not the empty subquery.

With ``--empty`` dbt renders ``ref()`` as ``(select * from t where false limit 0)``; dbt-clickhouse's
alter_column_type put that after ALTER TABLE, a syntax error on a server too.
"""

import pytest
from dbt.tests.util import run_dbt

_MODEL = """
{{ alter_column_type(ref("typed"), "value", "Nullable(String)") }}
select * from {{ ref("typed") }}
"""


class TestAlterColumnTypeWithEmpty:
    @pytest.fixture(scope="class")
    def seeds(self):
        return {"typed.csv": "id,value\n1,2\n"}

    @pytest.fixture(scope="class")
    def models(self):
        return {"altered.sql": _MODEL}

    def test_alter_column_type_under_empty(self, project):
        run_dbt(["seed"])
        run_dbt(["run", "--empty", "--select", "altered"])
        described = project.run_sql(
            "select type from system.columns where database = '{schema}' "
            "and table = 'typed' and name = 'value'",
            fetch="one",
        )
        assert described[0] == "Nullable(String)"
