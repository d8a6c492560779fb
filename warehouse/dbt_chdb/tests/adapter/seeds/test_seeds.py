"""dbt's seed tests: loading, full refresh, custom schema, delimiters, BOM, formats, type overrides."""

import pytest
from dbt.tests.adapter.simple_seed.test_seed import (
    BaseBasicSeedTests,
    BaseSeedConfigFullRefreshOff,
    BaseSeedConfigFullRefreshOn,
    BaseSeedCustomSchema,
    BaseSeedParsing,
    BaseSeedSpecificFormats,
    BaseSeedWithEmptyDelimiter,
    BaseSeedWithUniqueDelimiter,
    BaseSeedWithWrongDelimiter,
    BaseSimpleSeedEnabledViaConfig,
    BaseSimpleSeedWithBOM,
    BaseTestEmptySeed,
)
from dbt.tests.adapter.simple_seed.test_seed_type_override import BaseSimpleSeedColumnOverride
from dbt.tests.util import run_dbt


class TestBasicSeedTests(BaseBasicSeedTests):
    pass


class TestSeedConfigFullRefreshOn(BaseSeedConfigFullRefreshOn):
    pass


class TestSeedConfigFullRefreshOff(BaseSeedConfigFullRefreshOff):
    pass


class TestSeedCustomSchema(BaseSeedCustomSchema):
    pass


class TestSeedWithUniqueDelimiter(BaseSeedWithUniqueDelimiter):
    pass


class TestSeedWithWrongDelimiter(BaseSeedWithWrongDelimiter):
    pass


class TestSeedWithEmptyDelimiter(BaseSeedWithEmptyDelimiter):
    pass


class TestSimpleSeedEnabledViaConfig(BaseSimpleSeedEnabledViaConfig):
    pass


class TestSeedParsing(BaseSeedParsing):
    pass


class TestSimpleSeedWithBOM(BaseSimpleSeedWithBOM):
    pass


class TestSeedSpecificFormats(BaseSeedSpecificFormats):
    pass


class TestEmptySeed(BaseTestEmptySeed):
    pass


class TestSimpleSeedColumnOverride(BaseSimpleSeedColumnOverride):
    pass


_NULLABLE_SCHEMA = """
version: 2
seeds:
  - name: with_empty_cells
    config:
      column_types:
        val2: Nullable(UInt32)
        str1: Nullable(String)
"""


class TestSeedColumnTypes:
    """A seed's column_types in ClickHouse types: empty cells of Nullable columns load as NULL."""

    @pytest.fixture(scope="class")
    def seeds(self):
        return {
            "schema.yml": _NULLABLE_SCHEMA,
            "with_empty_cells.csv": 'key,val1,val2,str1\nabc,1,1,some\ndef,1,,\nhij,2,0,"a, b"\n',
            "booleans.csv": "key,value\nabc,true\ndef,false\n",
        }

    def test_seed_types_and_nulls(self, project):
        assert len(run_dbt(["seed"])) == 2
        columns = project.run_sql("describe table with_empty_cells", fetch="all")
        assert [(c[0], c[1]) for c in columns] == [
            ("key", "String"),
            ("val1", "Int32"),
            ("val2", "Nullable(UInt32)"),
            ("str1", "Nullable(String)"),
        ]
        rows = project.run_sql("select key, val2, str1 from with_empty_cells order by key", fetch="all")
        assert [tuple(r) for r in rows] == [("abc", 1, "some"), ("def", None, None), ("hij", 0, "a, b")]
        assert project.run_sql("select toTypeName(value) from booleans limit 1", fetch="one")[0] == "Bool"
