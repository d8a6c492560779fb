"""dbt's model, seed, snapshot and run hook tests, with ClickHouse versions of their SQL.

What differs from dbt's PostgreSQL fixtures, and why:

- ``vacuum`` (run outside the transaction) is ``optimize table``: ClickHouse's maintenance
  statement, and there is no transaction to be outside of.
- ``update t set c = 1`` is ``alter table t update c = 1 where 1``: a ClickHouse UPDATE needs a
  WHERE, and the mutation form works on every MergeTree table.
- ``null::int`` is ``null::Nullable(int)``: ClickHouse casts NULL only to a Nullable type.
- The context a hook records is the chdb target's: type ``chdb``, no user or password (an embedded engine), no
  database name (ClickHouse names have two parts), no host (no network).
"""

from pathlib import Path

import pytest
from clickhouse_sql import replace_all, run_script
from dbt.tests.adapter.hooks import test_model_hooks, test_run_hooks
from dbt.tests.adapter.hooks.test_model_hooks import (
    BaseDuplicateHooksInConfigs,
    BaseHookRefs,
    BaseHooksRefsOnSeeds,
    BasePrePostModelHooks,
    BasePrePostModelHooksInConfig,
    BasePrePostModelHooksInConfigKwargs,
    BasePrePostModelHooksInConfigWithCount,
    BasePrePostModelHooksOnSeeds,
    BasePrePostModelHooksOnSeedsPlusPrefixed,
    BasePrePostModelHooksOnSeedsPlusPrefixedWhitespace,
    BasePrePostModelHooksOnSnapshots,
    BasePrePostSnapshotHooksInConfigKwargs,
)
from dbt.tests.adapter.hooks.test_run_hooks import BaseAfterRunHooks, BasePrePostRunHooks

_DATA = Path(test_model_hooks.__file__).parent / "data"
_TYPES = [("TEXT,", "String,"), ("TEXT\n", "String\n"), ("INTEGER", "Int32")]


def _hook_table_sql(name: str) -> str:
    """dbt's hook-table script (``data/<name>``) in ClickHouse types."""
    return replace_all((_DATA / name).read_text(), _TYPES)


def _clickhouse_hooks(hooks: list) -> list:
    """A hook list with PostgreSQL's statements replaced by ClickHouse's (see the module docstring)."""
    out = []
    for hook in hooks:
        if isinstance(hook, dict):
            out.append({**hook, "sql": hook["sql"].replace("vacuum ", "optimize table ")})
        else:
            out.append(
                hook.replace(
                    "update {{ this }} set new_col = 1", "alter table {{ this }} update new_col = 1 where 1"
                ).replace("select null::{{ dbt.type_int() }}", "select null::Nullable({{ dbt.type_int() }})")
            )
    return out


def _clickhouse_config(config: dict) -> dict:
    """``project_config_update`` with every hook list made ClickHouse's."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out[key] = _clickhouse_config(value)
        elif key.lstrip("+").replace("_", "-") in ("pre-hook", "post-hook"):
            out[key] = _clickhouse_hooks(value)
        else:
            out[key] = value
    return out


def check_context(ctx: dict, state: str, project) -> None:
    """What a hook recorded of its context, on the chdb target."""
    assert ctx["test_state"] == state
    assert ctx["target_dbname"] == ""
    assert ctx["target_host"] == ""
    assert ctx["target_name"] == "default"
    assert ctx["target_schema"] == project.test_schema
    assert ctx["target_threads"] == 4
    assert ctx["target_type"] == "chdb"
    assert ctx["target_user"] == ""
    assert ctx["target_pass"] == ""
    assert ctx["run_started_at"], "run_started_at was not set"
    assert ctx["invocation_id"], "invocation_id was not set"
    assert ctx["thread_id"].startswith("Thread-") or ctx["thread_id"] == "MainThread"


class ClickHouseModelHooks:
    """The hook table in ClickHouse types, the project's hooks in ClickHouse SQL, chdb's context."""

    @pytest.fixture(scope="class", autouse=True)
    def setUp(self, project):
        run_script(project, _hook_table_sql("seed_model.sql"))

    @pytest.fixture(scope="class")
    def project_config_update(self):
        return _clickhouse_config(super().project_config_update.__wrapped__(self))

    def check_hooks(self, state, project, host, count=1):
        for ctx in self.get_ctx_vars(state, count=count, project=project):
            check_context(ctx, state, project)


class TestPrePostModelHooks(ClickHouseModelHooks, BasePrePostModelHooks):
    pass


class TestHookRefs(ClickHouseModelHooks, BaseHookRefs):
    pass


class ClickHouseSeedHooks:
    @pytest.fixture(scope="class")
    def project_config_update(self):
        return _clickhouse_config(super().project_config_update.__wrapped__(self))


class TestPrePostModelHooksOnSeeds(ClickHouseSeedHooks, BasePrePostModelHooksOnSeeds):
    pass


class TestHooksRefsOnSeeds(BaseHooksRefsOnSeeds):
    pass


class TestPrePostModelHooksOnSeedsPlusPrefixed(ClickHouseSeedHooks, BasePrePostModelHooksOnSeedsPlusPrefixed):
    pass


class TestPrePostModelHooksOnSeedsPlusPrefixedWhitespace(
    ClickHouseSeedHooks, BasePrePostModelHooksOnSeedsPlusPrefixedWhitespace
):
    pass


class TestPrePostModelHooksOnSnapshots(ClickHouseSeedHooks, BasePrePostModelHooksOnSnapshots):
    pass


class TestPrePostModelHooksInConfig(ClickHouseModelHooks, BasePrePostModelHooksInConfig):
    pass


class TestPrePostModelHooksInConfigWithCount(ClickHouseModelHooks, BasePrePostModelHooksInConfigWithCount):
    pass


class TestPrePostModelHooksInConfigKwargs(ClickHouseModelHooks, BasePrePostModelHooksInConfigKwargs):
    pass


class TestPrePostSnapshotHooksInConfigKwargs(ClickHouseSeedHooks, BasePrePostSnapshotHooksInConfigKwargs):
    pass


class TestDuplicateHooksInConfigs(BaseDuplicateHooksInConfigs):
    pass


class TestPrePostRunHooks(BasePrePostRunHooks):
    @pytest.fixture(scope="function")
    def setUp(self, project):
        run_script(project, _hook_table_sql("seed_run.sql"))
        project.run_sql(f"drop table if exists {project.test_schema}.schemas")
        project.run_sql(f"drop table if exists {project.test_schema}.db_schemas")
        test_run_hooks.os.environ["TERM_TEST"] = "TESTING"

    def check_hooks(self, state, project, host):
        check_context(self.get_ctx_vars(state, project), state, project)


class TestAfterRunHooks(BaseAfterRunHooks):
    pass
