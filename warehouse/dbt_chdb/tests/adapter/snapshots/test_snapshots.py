"""dbt's snapshot tests: timestamp and check strategies, column names, hard deletes, new records.

Their fixtures change the source tables in PostgreSQL SQL; the ClickHouse versions here:

- ``update t set ... where ...`` is ``alter table t update ... where ...`` (a mutation, synchronous
  under dbt-clickhouse's ``mutations_sync``): ClickHouse's UPDATE statement needs tables made for
  lightweight updates.
- Columns that hold NULL are ``Nullable``: a ClickHouse column holds NULL only if declared so.
- ``{database}.{schema}.t`` is ``{schema}.t``: ClickHouse names have two parts.
"""

import pytest
from clickhouse_sql import replace_all
from dbt.tests.adapter.simple_snapshot import common
from dbt.tests.adapter.simple_snapshot import new_record_dbt_valid_to_current as valid_to_current
from dbt.tests.adapter.simple_snapshot import test_ephemeral_snapshot_hard_deletes as hard_deletes
from dbt.tests.adapter.simple_snapshot.new_record_check_mode import BaseSnapshotNewRecordCheckMode
from dbt.tests.adapter.simple_snapshot.new_record_dbt_valid_to_current import (
    BaseSnapshotNewRecordDbtValidToCurrent,
)
from dbt.tests.adapter.simple_snapshot.new_record_timestamp_mode import BaseSnapshotNewRecordTimestampMode
from dbt.tests.adapter.simple_snapshot.test_ephemeral_snapshot_hard_deletes import (
    BaseSnapshotEphemeralHardDeletes,
)
from dbt.tests.adapter.simple_snapshot.test_snapshot import BaseSimpleSnapshot, BaseSnapshotCheck
from dbt.tests.adapter.simple_snapshot.test_various_configs import (
    BaseSnapshotColumnNames,
    BaseSnapshotColumnNamesFromDbtProject,
    BaseSnapshotDbtValidToCurrent,
    BaseSnapshotInvalidColumnNames,
    BaseSnapshotMultiUniqueKey,
)
from dbt.tests.util import relation_from_name


def _two_part(sql: str) -> str:
    """A fixture's ``{database}.{schema}.t`` as ClickHouse's two-part ``{schema}.t``."""
    return replace_all(sql, [("{database}.{schema}.", "{schema}.")])


class ClickHouseFactChanges:
    """The base tests' changes to their ``fact`` table, in ClickHouse SQL."""

    def update_fact_records(self, updates: dict[str, str], where: str | None = None) -> None:
        table = relation_from_name(self.project.adapter, "fact")
        assignments = ", ".join(f"{column} = {expression}" for column, expression in updates.items())
        self.project.run_sql(f"alter table {table} update {assignments} where {where or '1 = 1'}")

    def add_fact_column(self, column: str | None = None, definition: str | None = None) -> None:
        # dbt's "varchar(200) default null": a String column that holds NULL is Nullable(String)
        assert definition == "varchar(200) default null", definition
        common.add_column(self.project, "fact", column, "Nullable(String) default null")


class TestSimpleSnapshot(ClickHouseFactChanges, BaseSimpleSnapshot):
    pass


class TestSnapshotCheck(ClickHouseFactChanges, BaseSnapshotCheck):
    pass


class TestSnapshotColumnNames(BaseSnapshotColumnNames):
    pass


class TestSnapshotColumnNamesFromDbtProject(BaseSnapshotColumnNamesFromDbtProject):
    pass


class TestSnapshotInvalidColumnNames(BaseSnapshotInvalidColumnNames):
    pass


class TestSnapshotDbtValidToCurrent(BaseSnapshotDbtValidToCurrent):
    pass


class TestSnapshotMultiUniqueKey(BaseSnapshotMultiUniqueKey):
    pass


class TestSnapshotEphemeralHardDeletes(BaseSnapshotEphemeralHardDeletes):
    @pytest.fixture(scope="class")
    def source_create_sql(self):
        return _two_part(
            replace_all(hard_deletes._source_create_sql, [("updated_at TIMESTAMP", "updated_at DateTime")])
        )

    @pytest.fixture(scope="class")
    def source_insert_sql(self):
        return _two_part(hard_deletes._source_insert_sql)

    @pytest.fixture(scope="class")
    def source_alter_sql(self):
        return _two_part(hard_deletes._source_alter_sql)


class TestSnapshotNewRecordTimestampMode(BaseSnapshotNewRecordTimestampMode):
    pass


class TestSnapshotNewRecordCheckMode(BaseSnapshotNewRecordCheckMode):
    pass


class TestSnapshotNewRecordDbtValidToCurrent(BaseSnapshotNewRecordDbtValidToCurrent):
    @pytest.fixture(scope="class")
    def snapshots(self):
        return {
            "snapshot.sql": replace_all(valid_to_current._snapshot_actual_sql, [("{{target.database}}.", "")])
        }

    @pytest.fixture(scope="class")
    def seed_new_record_mode_statements(self):
        return [_two_part(sql) for sql in valid_to_current._seed_new_record_mode_statements]

    @pytest.fixture(scope="class")
    def delete_sql(self):
        return _two_part(valid_to_current._delete_sql)
