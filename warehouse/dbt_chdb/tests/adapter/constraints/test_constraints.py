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


class ClickHouseTypes:
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


class TestConstraintsRuntimeDdlEnforcement(BaseConstraintsRuntimeDdlEnforcement):
    pass


class TestIncrementalConstraintsRuntimeDdlEnforcement(BaseIncrementalConstraintsRuntimeDdlEnforcement):
    pass


class TestConstraintsRollback(BaseConstraintsRollback):
    pass


class TestIncrementalConstraintsRollback(BaseIncrementalConstraintsRollback):
    pass


class TestModelConstraintsRuntimeEnforcement(BaseModelConstraintsRuntimeEnforcement):
    pass


class TestConstraintQuotedColumn(BaseConstraintQuotedColumn):
    pass


class TestIncrementalForeignKeyConstraint(BaseIncrementalForeignKeyConstraint):
    pass
