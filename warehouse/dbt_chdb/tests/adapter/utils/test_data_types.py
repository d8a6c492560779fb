"""dbt's type macro tests (dbt.type_int(), type_string(), ...)."""

import pytest
from dbt.tests.adapter.utils.data_types.test_type_bigint import BaseTypeBigInt
from dbt.tests.adapter.utils.data_types.test_type_boolean import BaseTypeBoolean
from dbt.tests.adapter.utils.data_types.test_type_float import BaseTypeFloat
from dbt.tests.adapter.utils.data_types.test_type_int import BaseTypeInt
from dbt.tests.adapter.utils.data_types.test_type_numeric import BaseTypeNumeric
from dbt.tests.adapter.utils.data_types.test_type_string import BaseTypeString
from dbt.tests.adapter.utils.data_types.test_type_timestamp import BaseTypeTimestamp


class TestTypeBigInt(BaseTypeBigInt):
    @pytest.fixture(scope="class")
    def models(self):
        # an unsigned literal is a UInt64 in ClickHouse; a negative one is the signed Int64 of type_bigint()
        return {
            "expected.sql": "select -9223372036854775800 as bigint_col",
            "actual.sql": self.interpolate_macro_namespace(
                "select cast('-9223372036854775800' as {{ type_bigint() }}) as bigint_col", "type_bigint"
            ),
        }

class TestTypeBoolean(BaseTypeBoolean):
    pass

class TestTypeFloat(BaseTypeFloat):
    pass

class TestTypeInt(BaseTypeInt):
    pass

class TestTypeNumeric(BaseTypeNumeric):
    pass

class TestTypeString(BaseTypeString):
    pass

class TestTypeTimestamp(BaseTypeTimestamp):
    pass
