"""The one list of dbt's standard adapter tests that do not apply on chdb, each with its reason.

Keys are node ids relative to ``tests/`` (a class: ``path::Class``; one test: ``path::Class::test``).
Three kinds of reason:

- ``CHDB``: embedded ClickHouse lacks what the test needs (access management here; cluster, S3,
  Keeper and ``system.query_log`` tests are dbt-clickhouse's own, not dbt's standard ones).
- ``CLICKHOUSE``: what the test needs is not in ClickHouse, server or embedded (a MERGE statement,
  several statements in one query, case-folded names), or dbt-clickhouse does it by design
  otherwise (it creates the profile's database on connecting).
- ``TODO (adapter, not chdb)``: dbt-clickhouse's macros behave otherwise than dbt's tests expect,
  on a server too; these run once dbt-chdb has macros of its own for them.

Tests whose fixtures are PostgreSQL SQL are not listed: they run on ClickHouse versions of their
fixtures (``clickhouse_sql.py`` and each test module).
"""

from __future__ import annotations

A = "adapter/"

CHDB_NO_ACCESS_MANAGEMENT = (
    "CHDB: embedded ClickHouse has no users, roles or grants (no access management), so grants "
    "cannot be applied or read back; `grants:` is a warned no-op there, tested in chdb/test_chdb_grants.py"
)
TODO_SNAPSHOT_META_COLUMNS = (
    "TODO (adapter, not chdb): dbt-clickhouse's snapshot staging and merge macros name "
    "dbt_valid_to / dbt_scd_id / dbt_updated_at literally and implement neither "
    "`hard_deletes: new_record` nor `dbt_valid_to_current`, so snapshot_meta_column_names, new-record "
    "mode and valid-to-current fail on a server too; they run once dbt-chdb has its own staging and "
    "merge macros honouring the configured column names"
)
CLICKHOUSE_SQL_HEADER = (
    "CLICKHOUSE: the test's sql_header is a statement (PostgreSQL's `set session time zone`) sent in "
    "one query with the model's DDL; a ClickHouse server takes one statement per query "
    "(`Multi-statements are not allowed`, as dbt-chdb answers too), so a header can hold no "
    "statement there (session settings are a model's query_settings; chdb/test_chdb_settings.py)"
)

SKIPS: dict[str, str] = {
    # --- chdb cannot -----------------------------------------------------------------------------
    A + "grants/test_grants.py": CHDB_NO_ACCESS_MANAGEMENT,
    # --- not yet: adapter work (see the reason) --------------------------------------------------
    A + "snapshots/test_snapshots.py::TestSnapshotColumnNames": TODO_SNAPSHOT_META_COLUMNS,
    A + "snapshots/test_snapshots.py::TestSnapshotColumnNamesFromDbtProject": TODO_SNAPSHOT_META_COLUMNS,
    A + "snapshots/test_snapshots.py::TestSnapshotInvalidColumnNames": TODO_SNAPSHOT_META_COLUMNS,
    A + "snapshots/test_snapshots.py::TestSnapshotDbtValidToCurrent": TODO_SNAPSHOT_META_COLUMNS,
    A + "snapshots/test_snapshots.py::TestSnapshotMultiUniqueKey": TODO_SNAPSHOT_META_COLUMNS,
    A + "snapshots/test_snapshots.py::TestSnapshotNewRecordTimestampMode": TODO_SNAPSHOT_META_COLUMNS,
    A + "snapshots/test_snapshots.py::TestSnapshotNewRecordCheckMode": TODO_SNAPSHOT_META_COLUMNS,
    A + "snapshots/test_snapshots.py::TestSnapshotNewRecordDbtValidToCurrent": TODO_SNAPSHOT_META_COLUMNS,
    A + "incremental/test_incremental.py::TestIncrementalOnSchemaChange::test_run_incremental_ignore": (
        "TODO (adapter, not chdb): with on_schema_change='ignore' the incremental relation ends with "
        "the model's new columns (field3, field4), where dbt keeps the target's; dbt-clickhouse's own "
        "schema-change tests assert its behaviour"
    ),
    A
    + "incremental/test_incremental.py::TestIncrementalOnSchemaChange::test_run_incremental_append_new_columns": (
        "TODO (adapter, not chdb): its second half drops a column from the model; dbt-clickhouse's "
        "append_new_columns then fails the run as `out of sync` where dbt appends and keeps the old one"
    ),
    A
    + "incremental/test_incremental.py::TestIncrementalOnSchemaChange::test_run_incremental_sync_all_columns": (
        "TODO (adapter, not chdb): dbt-clickhouse's sync_all_columns with a dropped column inserts from "
        "a __dbt_tmp relation that lacks it (NO_SUCH_COLUMN_IN_TABLE field2), on a server too"
    ),
    # --- not in ClickHouse (server or embedded), or dbt-clickhouse by design ---------------------
    A + "constraints/test_constraints.py::TestTableContractSqlHeader": CLICKHOUSE_SQL_HEADER,
    A + "constraints/test_constraints.py::TestIncrementalContractSqlHeader": CLICKHOUSE_SQL_HEADER,
    A + "incremental/test_incremental.py::TestMergeExcludeColumns": (
        "CLICKHOUSE: tests incremental_strategy='merge' (its merge_exclude_columns); ClickHouse has no "
        "MERGE statement and dbt-clickhouse no merge strategy ('not valid for ClickHouse', on a server too)"
    ),
    A + "empty/test_empty.py::TestMetadataWithEmptyFlag::test_run[alter_column_type]": (
        "CLICKHOUSE: alters column `MY_VALUE` of a seed whose column is `my_value`; PostgreSQL folds "
        "unquoted names to lower case, ClickHouse names are case-sensitive (NOT_FOUND_COLUMN_IN_BLOCK). "
        "The --empty subquery after ALTER TABLE it also hit is fixed (chdb/test_chdb_empty.py)"
    ),
    A + "relations/test_relations.py::TestDropSchemaNamed": (
        "CLICKHOUSE: dbt-clickhouse's client creates the profile's database whenever it opens a "
        "connection, so the test's own connection re-creates the schema it then checks is gone "
        "(on a server too)"
    ),
}


def skip_reason(nodeid: str) -> str | None:
    """The reason ``nodeid`` cannot apply on chdb, or None if it runs."""
    if nodeid.startswith("tests/"):
        nodeid = nodeid[len("tests/") :]
    if nodeid in SKIPS:  # one parametrised case
        return SKIPS[nodeid]
    parts = nodeid.split("[", 1)[0].split("::")
    for n in range(len(parts), 0, -1):
        reason = SKIPS.get("::".join(parts[:n]))
        if reason:
            return reason
    return None
