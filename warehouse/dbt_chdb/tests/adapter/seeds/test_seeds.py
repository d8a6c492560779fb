"""dbt's seed tests: loading, full refresh, custom schema, delimiters, BOM, formats, type overrides."""

from pathlib import Path

import pytest
from clickhouse_sql import replace_all, run_script
from dbt.tests.adapter.simple_seed import fixtures, seeds, test_seed
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
from dbt.tests.util import check_relations_equal, copy_file, get_connection, run_dbt

#: dbt's expected seed table in ClickHouse types: what the adapter infers for the seed's columns
#: (Int32, String, DateTime). Its one NULL (a first name) goes into a String as '' under
#: ClickHouse's input_format_null_as_default, as the seed's empty cell does.
SEED_EXPECTED_SQL = replace_all(
    seeds.seeds__expected_sql,
    [
        ("seed_id INTEGER", "seed_id Int32"),
        ("first_name TEXT", "first_name String"),
        ("email TEXT", "email String"),
        ("ip_address TEXT", "ip_address String"),
        ("birthday TIMESTAMP WITHOUT TIME ZONE", "birthday DateTime"),
    ],
)


class ClickHouseSeedSetup:
    """The expected table created from ClickHouse SQL, one statement at a time."""

    @pytest.fixture(scope="class", autouse=True)
    def setUp(self, project):
        run_script(project, SEED_EXPECTED_SQL)


class ClickHouseFullRefresh(ClickHouseSeedSetup):
    """A full refresh drops and re-creates the seed. PostgreSQL's ``drop ... cascade`` takes the
    view built on it along; ClickHouse has no CASCADE, so the view stays and reads the new seed."""

    def _check_full_refresh_end_state(self, run_result, project) -> None:
        self._check_relation_end_state(run_result=run_result, project=project, exists=True)
        check_relations_equal(project.adapter, ["models__downstream_from_seed_actual", "seed_expected"])


class TestBasicSeedTests(ClickHouseFullRefresh, BaseBasicSeedTests):
    def test_simple_seed_full_refresh_flag(self, project):
        self._build_relations_for_test(project)
        self._check_full_refresh_end_state(run_dbt(["seed", "--full-refresh"]), project)


class TestSeedConfigFullRefreshOn(ClickHouseFullRefresh, BaseSeedConfigFullRefreshOn):
    def test_simple_seed_full_refresh_config(self, project):
        self._build_relations_for_test(project)
        self._check_full_refresh_end_state(run_dbt(["seed"]), project)


class TestSeedConfigFullRefreshOff(ClickHouseSeedSetup, BaseSeedConfigFullRefreshOff):
    pass


class TestSeedCustomSchema(ClickHouseSeedSetup, BaseSeedCustomSchema):
    pass


class TestSeedWithUniqueDelimiter(ClickHouseSeedSetup, BaseSeedWithUniqueDelimiter):
    pass


class TestSeedWithWrongDelimiter(ClickHouseSeedSetup, BaseSeedWithWrongDelimiter):
    pass


class TestSeedWithEmptyDelimiter(ClickHouseSeedSetup, BaseSeedWithEmptyDelimiter):
    pass


class TestSimpleSeedEnabledViaConfig(BaseSimpleSeedEnabledViaConfig):
    @pytest.fixture(scope="function")
    def clear_test_schema(self, project):
        """Drop the schema through the adapter (a ClickHouse database holds its tables, no CASCADE),
        so its clients know to create it again."""
        yield
        with get_connection(project.adapter):
            relation = project.adapter.Relation.create(database=project.database, schema=project.test_schema)
            project.adapter.drop_schema(relation)


class TestSeedParsing(ClickHouseSeedSetup, BaseSeedParsing):
    pass


class TestSimpleSeedWithBOM(BaseSimpleSeedWithBOM):
    @pytest.fixture(scope="class", autouse=True)
    def setUp(self, project):
        run_script(project, SEED_EXPECTED_SQL)
        # dbt's BOM file, from the package beside its test (not this repository's test directory)
        copy_file(
            str(Path(test_seed.__file__).parent),
            "seed_bom.csv",
            project.project_root / "seeds" / "seed_bom.csv",
            "",
        )


class TestSeedSpecificFormats(BaseSeedSpecificFormats):
    pass


class TestEmptySeed(BaseTestEmptySeed):
    pass


class TestSimpleSeedColumnOverride(BaseSimpleSeedColumnOverride):
    """The same overrides and type checks in ClickHouse's type names (``text`` is ``String``...).

    ``birthday`` holds date-times: PostgreSQL casts them to ``date``, ClickHouse's CSV reader
    refuses a time after a ``Date``, so the override is ``DateTime64(0)`` (not the inferred
    ``DateTime``)."""

    @pytest.fixture(scope="class")
    def models(self):
        schema = replace_all(
            fixtures.properties__schema_yml,
            [
                ("type: date\n", "type: DateTime64(0)\n"),
                ("type: text", "type: String"),
                ("type: integer", "type: Int32"),
                ("type: boolean", "type: Bool"),
                ("type: timestamp without time zone", "type: DateTime"),
            ],
        )
        return {"schema.yml": schema}

    @staticmethod
    def seed_enabled_types():
        return {"seed_id": "String", "birthday": "DateTime64(0)"}

    @staticmethod
    def seed_tricky_types():
        return {"seed_id_str": "String", "looks_like_a_bool": "String", "looks_like_a_date": "String"}


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
