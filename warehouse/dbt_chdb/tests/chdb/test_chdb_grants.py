"""`grants:` on chdb: a no-op with a warning, an error where grants are required or sent as SQL."""

import pytest
from dbt.tests.util import run_dbt_and_capture
from dbt_common.exceptions import DbtDatabaseError

_MODEL = "{{ config(materialized='table', grants={'select': ['reporting_user']}) }}\nselect 1 as id"
_SEED = "id\n1\n"
_SNAPSHOT = """
{% snapshot granted_snapshot %}
{{ config(target_schema=schema, unique_key='id', strategy='check', check_cols='all',
          grants={'select': ['reporting_user']}) }}
select 1 as id
{% endsnapshot %}
"""


class TestGrantsAreAWarnedNoOp:
    @pytest.fixture(scope="class")
    def models(self):
        return {
            "granted_table.sql": _MODEL,
            "granted_view.sql": _MODEL.replace("'table'", "'view'"),
            "granted_incremental.sql": _MODEL.replace("'table'", "'incremental'"),
        }

    @pytest.fixture(scope="class")
    def seeds(self):
        return {"granted_seed.csv": _SEED}

    @pytest.fixture(scope="class")
    def snapshots(self):
        return {"granted_snapshot.sql": _SNAPSHOT}

    @pytest.fixture(scope="class")
    def project_config_update(self):
        return {"seeds": {"+grants": {"select": ["reporting_user"]}}}

    def test_build_succeeds_and_warns_per_relation(self, project):
        results, log = run_dbt_and_capture(["build"])
        assert len(results) == 5 and all(r.status in ("success", "pass") for r in results)
        warnings = [line for line in log.splitlines() if "chdb has no access management: grants on" in line]
        for name in ("granted_table", "granted_view", "granted_incremental", "granted_seed", "granted_snapshot"):
            assert any(name in w and "select to reporting_user" in w for w in warnings), name
        # the relations exist and hold their rows
        assert project.run_sql(f"select count() from {project.test_schema}.granted_table", fetch="one")[0] == 1


class TestRequiredGrantsFail:
    @pytest.fixture(scope="class")
    def dbt_profile_target(self, dbt_profile_target):
        return {**dbt_profile_target, "require_grants": True}

    @pytest.fixture(scope="class")
    def models(self):
        return {"granted_table.sql": _MODEL, "plain.sql": "select 1 as id"}

    def test_a_model_with_grants_fails_clearly(self, project):
        results, log = run_dbt_and_capture(["run"], expect_pass=False)
        by_name = {r.node.name: r.status for r in results}
        assert by_name == {"granted_table": "error", "plain": "success"}
        assert "require_grants: true" in log and "grants on" in log


class TestGrantStatementsFail:
    @pytest.fixture(scope="class")
    def models(self):
        return {
            "hooked.sql": "{{ config(post_hook='grant select on {{ this }} to reporting_user') }}\nselect 1 as id"
        }

    def test_grant_sql_is_a_clear_error(self, project, client):
        results, log = run_dbt_and_capture(["run"], expect_pass=False)
        assert results[0].status == "error"
        assert "has no access management" in log
        for sql in ("GRANT SELECT ON t TO u", "  revoke all on *.* from u", "CREATE USER u", "/* c */ create role r"):
            with pytest.raises(DbtDatabaseError, match="no access management"):
                client.command(sql)
