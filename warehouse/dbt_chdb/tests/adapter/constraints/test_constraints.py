"""dbt's contract and constraint tests with ClickHouse's types (columns-equal preflight checks)."""

import pytest
from dbt.tests.adapter.constraints.test_constraints import (
    BaseConstraintQuotedColumn,
    BaseConstraintsRollback,
    BaseConstraintsRuntimeDdlEnforcement,
    BaseIncrementalConstraintsColumnsEqual,
    BaseIncrementalConstraintsRollback,
    BaseIncrementalConstraintsRuntimeDdlEnforcement,
    BaseIncrementalContractSqlHeader,
    BaseIncrementalForeignKeyConstraint,
    BaseModelConstraintsRuntimeEnforcement,
    BaseTableConstraintsColumnsEqual,
    BaseTableContractSqlHeader,
    BaseViewConstraintsColumnsEqual,
)


def _clickhouse_yaml(models: dict) -> dict:
    """dbt's contract YAML in ClickHouse's names for the types its models' literals have
    (``1`` is UInt8, ``'blue'`` is String)."""
    out = {}
    for name, text in models.items():
        if name.endswith(".yml"):
            text = text.replace("data_type: integer", "data_type: UInt8").replace(
                "data_type: text", "data_type: String"
            )
            # a ClickHouse table constraint has a name
            text = text.replace(
                "    constraints:\n      - type: check\n        expression: (id > 0)\n      - type: check\n        expression: id >= 1\n",
                "    constraints:\n      - type: check\n        name: id_positive\n        expression: (id > 0)\n"
                "      - type: check\n        name: id_from_one\n        expression: id >= 1\n",
            ).replace(
                "      - type: check\n        # this one is the on the user\n",
                "      - type: check\n        name: from_blue\n",
            )
        out[name] = text
    return out


class ClickHouseContractYaml:
    @pytest.fixture(scope="class")
    def models(self):
        return _clickhouse_yaml(super().models.__wrapped__(self))


class ClickHouseTypes(ClickHouseContractYaml):
    @pytest.fixture
    def string_type(self):
        return "String"

    @pytest.fixture
    def int_type(self):
        return "Int32"

    @pytest.fixture
    def data_types(self, schema_int_type, int_type, string_type):
        # sql_column_value, schema_data_type, error_data_type
        return [
            ["1::Int32", schema_int_type, int_type],
            ["'1'", string_type, string_type],
            ["true", "Bool", "Bool"],
            ["'2013-11-03 00:00:00'::DateTime('UTC')", "DateTime('UTC')", "DateTime('UTC')"],
            ["'2013-11-03 00:00:00'::DateTime", "DateTime", "DateTime"],
            ["['a','b','c']", "Array(String)", "Array(String)"],
            ["[1::Int32,2::Int32,3::Int32]", "Array(Int32)", "Array(Int32)"],
            ["'1'::Decimal(10, 2)", "Decimal(10, 2)", "Decimal(10, 2)"],
        ]


class TestTableConstraintsColumnsEqual(ClickHouseTypes, BaseTableConstraintsColumnsEqual):
    pass


class TestViewConstraintsColumnsEqual(ClickHouseTypes, BaseViewConstraintsColumnsEqual):
    pass


class TestIncrementalConstraintsColumnsEqual(ClickHouseTypes, BaseIncrementalConstraintsColumnsEqual):
    pass


class TestTableContractSqlHeader(BaseTableContractSqlHeader):
    pass


class TestIncrementalContractSqlHeader(BaseIncrementalContractSqlHeader):
    pass


_INSERT_FK_MODEL = """
insert into <model_identifier> ("id", "color", "date_day")
-- use a subquery to get columns in the right order
select "id", "color", "date_day" from (
    -- depends_on: <foreign_key_model_identifier>
    select 'blue' as color, 1 as id, '2019-01-01' as date_day
)
"""


class ClickHouseDdl:
    """What dbt-clickhouse runs to fill a contracted table: the columns in the contract's order
    (its CREATE TABLE, with the constraints ClickHouse has, is a statement of its own)."""

    @pytest.fixture(scope="class")
    def expected_sql(self):
        return _INSERT_FK_MODEL


class ClickHouseTableChecks(ClickHouseDdl):
    """Model-level CHECK constraints reach the table: ClickHouse enforces them on insert."""

    checks: tuple[str, ...] = (
        "CONSTRAINT id_positive CHECK (id > 0)",
        "CONSTRAINT id_from_one CHECK (id >= 1)",
    )

    def test__model_constraints_ddl(self, project, expected_sql):
        super().test__model_constraints_ddl(project, expected_sql)
        ddl = project.run_sql("show create table {schema}.my_model", fetch="one")[0]
        assert all(check in ddl for check in self.checks), ddl


class TestConstraintsRuntimeDdlEnforcement(
    ClickHouseContractYaml, ClickHouseDdl, BaseConstraintsRuntimeDdlEnforcement
):
    pass


class TestIncrementalConstraintsRuntimeDdlEnforcement(
    ClickHouseContractYaml, ClickHouseDdl, BaseIncrementalConstraintsRuntimeDdlEnforcement
):
    pass


class ClickHouseNullRefused:
    """A NULL for a non-Nullable column is refused by ClickHouse's cast, with its own message; the
    old relation stays (dbt-clickhouse builds a new table and swaps it in), no transaction needed."""

    @pytest.fixture(scope="class")
    def expected_error_messages(self):
        return ["Cannot convert NULL to a non-nullable type"]


class TestConstraintsRollback(ClickHouseContractYaml, ClickHouseNullRefused, BaseConstraintsRollback):
    pass


class TestIncrementalConstraintsRollback(
    ClickHouseContractYaml, ClickHouseNullRefused, BaseIncrementalConstraintsRollback
):
    pass


class TestModelConstraintsRuntimeEnforcement(
    ClickHouseContractYaml, ClickHouseTableChecks, BaseModelConstraintsRuntimeEnforcement
):
    pass


class TestConstraintQuotedColumn(ClickHouseContractYaml, BaseConstraintQuotedColumn):
    @pytest.fixture(scope="class")
    def expected_sql(self):
        return """
insert into <model_identifier> ("id", "from", "date_day")
-- use a subquery to get columns in the right order
select "id", "from", "date_day" from (
    select 'blue' as "from", 1 as id, '2019-01-01' as date_day
)
"""

    def test__constraints_ddl(self, project, expected_sql):
        super().test__constraints_ddl(project, expected_sql)
        ddl = project.run_sql("show create table {schema}.my_model", fetch="one")[0]
        assert "CONSTRAINT from_blue CHECK" in ddl, ddl


class TestIncrementalForeignKeyConstraint(ClickHouseContractYaml, BaseIncrementalForeignKeyConstraint):
    pass
