"""dbt's command tests: debug, show, clone."""

from dbt.tests.adapter.dbt_clone.test_dbt_clone import (
    BaseCloneNotPossible,
    BaseClonePossible,
    BaseCloneSameSourceAndTarget,
    BaseCloneSameTargetAndState,
)
from dbt.tests.adapter.dbt_debug.test_dbt_debug import BaseDebug, BaseDebugProfileVariable
from dbt.tests.adapter.dbt_show.test_dbt_show import (
    BaseShowDoesNotHandleDoubleLimit,
    BaseShowLimit,
    BaseShowSqlHeader,
)
from dbt.tests.util import run_dbt, run_dbt_and_capture


class TestDebug(BaseDebug):
    pass


class TestDebugProfileVariable(BaseDebugProfileVariable):
    pass


class TestShowLimit(BaseShowLimit):
    pass


class TestShowSqlHeader(BaseShowSqlHeader):
    pass


class TestShowDoesNotHandleDoubleLimit(BaseShowDoesNotHandleDoubleLimit):
    # ClickHouse's syntax error at the second LIMIT dbt show appends; matched on the message's end
    # (its list of expected tokens, then the code), the part str(ExceptionInfo) keeps
    DATABASE_ERROR_MESSAGE = "LIMIT. (SYNTAX_ERROR)"


class TestClonePossible(BaseClonePossible):
    pass


class TestCloneNotPossible(BaseCloneNotPossible):
    pass


class TestCloneSameSourceAndTarget(BaseCloneSameSourceAndTarget):
    def test_clone_same_source_and_target(self, project, unique_schema):
        """dbt's test with the source table named in ClickHouse's two parts (no database prefix)."""
        project.run_sql(f"drop table if exists {unique_schema}.source_table")
        project.run_sql(
            f"create table {unique_schema}.source_table as "
            "select 1 as id, 'test_data' as name union all select 2 as id, 'more_data' as name"
        )
        run_dbt(["seed"])
        run_dbt(["run"])
        self.copy_state(project.project_root)
        _, output = run_dbt_and_capture(
            ["clone", "--state", "state", "--full-refresh", "--log-level", "debug"]
        )
        assert "skipping clone for relation" in output


class TestCloneSameTargetAndState(BaseCloneSameTargetAndState):
    pass
