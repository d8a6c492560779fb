"""dbt's store-test-failures tests.

Their seeds hold empty cells meant as NULL. A ClickHouse column holds NULL only if declared
Nullable (an empty cell of a String column is ''), so the seeds' columns with empty cells are
declared ``Nullable`` through the ``column_types`` hooks dbt provides for this; and one model's WHERE
names its table's column, as ClickHouse reads an unqualified name as the SELECT's alias first.
"""

import pytest
from clickhouse_sql import replace_all
from dbt.tests.adapter.store_test_failures_tests import fixtures
from dbt.tests.adapter.store_test_failures_tests.basic import (
    StoreTestFailuresAsExceptions,
    StoreTestFailuresAsGeneric,
    StoreTestFailuresAsInteractions,
    StoreTestFailuresAsProjectLevelEphemeral,
    StoreTestFailuresAsProjectLevelOff,
    StoreTestFailuresAsProjectLevelView,
)
from dbt.tests.adapter.store_test_failures_tests.test_store_test_failures import (
    BaseStoreTestFailures,
    BaseStoreTestFailuresLimit,
)


class TestStoreTestFailures(BaseStoreTestFailures):
    @pytest.fixture(scope="class")
    def models(self):
        # ClickHouse resolves a name in WHERE to the SELECT's alias first: in dbt's
        # `select null as id ... where id in (3,4)` the `id` is the NULL, so no row came through.
        # The ClickHouse version names the table's column.
        problematic = replace_all(
            fixtures.models__problematic_model,
            [
                (
                    "from {{ ref('people') }}\nwhere id in (3,4)",
                    "from {{ ref('people') }} as p\nwhere p.id in (3,4)",
                )
            ],
        )
        return {
            "fine_model.sql": fixtures.models__fine_model,
            "fine_model_but_with_a_no_good_very_long_name.sql": (
                fixtures.models__file_model_but_with_a_no_good_very_long_name
            ),
            "problematic_model.sql": problematic,
        }

    def column_type_overrides(self):
        # the stored not_null failures: rows whose id is NULL
        return {"expected_not_null_problematic_model_id": {"+column_types": {"id": "Nullable(Int32)"}}}


class TestStoreTestFailuresLimit(BaseStoreTestFailuresLimit):
    pass


class TestStoreTestFailuresAsInteractions(StoreTestFailuresAsInteractions):
    pass


class TestStoreTestFailuresAsProjectLevelOff(StoreTestFailuresAsProjectLevelOff):
    pass


class TestStoreTestFailuresAsProjectLevelView(StoreTestFailuresAsProjectLevelView):
    pass


class TestStoreTestFailuresAsGeneric(StoreTestFailuresAsGeneric):
    @pytest.fixture(scope="class")
    def project_config_update(self):
        # one chipmunk has no shirt: NULL, which not_null_chipmunks_shirt is to find
        return {"seeds": {"test": {self.seed_table: {"+column_types": {"shirt": "Nullable(String)"}}}}}


class TestStoreTestFailuresAsProjectLevelEphemeral(StoreTestFailuresAsProjectLevelEphemeral):
    pass


class TestStoreTestFailuresAsExceptions(StoreTestFailuresAsExceptions):
    pass
