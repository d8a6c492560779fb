"""dbt's unit testing tests: types, case insensitivity, invalid input, quoted reserved words."""

import pytest
from dbt.tests.adapter.unit_testing.test_case_insensitivity import BaseUnitTestCaseInsensivity
from dbt.tests.adapter.unit_testing.test_invalid_input import BaseUnitTestInvalidInput
from dbt.tests.adapter.unit_testing.test_quoted_reserved_word_column_names import (
    BaseUnitTestQuotedReservedWordColumnNames,
)
from dbt.tests.adapter.unit_testing.test_types import BaseUnitTestingTypes


class TestUnitTestingTypes(BaseUnitTestingTypes):
    """dbt's list in ClickHouse literals: ClickHouse reads no ``-0`` zone offset after a timestamp,
    and a zone is part of the type (``DateTime('UTC')``), not of the value."""

    @pytest.fixture
    def data_types(self):
        # sql_value, yaml_value
        return [
            ["1", "1"],
            ["'1'", "1"],
            ["true", "true"],
            ["DATE '2020-01-02'", "2020-01-02"],
            ["TIMESTAMP '2013-11-03 00:00:00'", "2013-11-03 00:00:00"],
            ["'2013-11-03 00:00:00'::DateTime('UTC')", "2013-11-03 00:00:00"],
            ["'2013-11-03 00:00:00.123'::DateTime64(3, 'Asia/Shanghai')", "2013-11-03 00:00:00.123"],
            ["'1'::numeric", "1"],
            ["'1.25'::Decimal(10, 2)", "1.25"],
            ["'a'::Nullable(String)", "a"],
            ["'a'::LowCardinality(String)", "a"],
        ]


class TestUnitTestCaseInsensitivity(BaseUnitTestCaseInsensivity):
    pass


class TestUnitTestInvalidInput(BaseUnitTestInvalidInput):
    pass


class TestUnitTestQuotedReservedWordColumnNames(BaseUnitTestQuotedReservedWordColumnNames):
    pass
