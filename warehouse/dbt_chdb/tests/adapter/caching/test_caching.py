"""dbt's relation cache tests.

dbt-clickhouse's relations have no database part (ClickHouse's "database" is dbt's schema), so
its cache keys carry schema and identifier only: the comparison is over those two.
"""

from dbt.tests.adapter.caching.test_caching import (
    BaseCachingLowercaseModel,
    BaseCachingSelectedSchemaOnly,
    BaseCachingUppercaseModel,
    BaseNoPopulateCache,
)
from dbt.tests.util import run_dbt


class SchemaAndIdentifierKeys:
    def run_and_inspect_cache(self, project, run_args=None):
        run_dbt(run_args)
        relations = list(project.adapter.cache.relations)
        assert len(relations) == 1
        first = relations[0]
        assert first.schema == project.test_schema.lower()
        run_dbt(run_args)  # the second run populates the cache from the warehouse
        relations = list(project.adapter.cache.relations)
        assert len(relations) == 1
        for key in ("schema", "identifier"):
            assert getattr(first, key).lower() == getattr(relations[0], key).lower()


class TestCachingLowercaseModel(SchemaAndIdentifierKeys, BaseCachingLowercaseModel):
    pass


class TestCachingUppercaseModel(SchemaAndIdentifierKeys, BaseCachingUppercaseModel):
    pass


class TestCachingSelectedSchemaOnly(SchemaAndIdentifierKeys, BaseCachingSelectedSchemaOnly):
    pass


class TestNoPopulateCache(SchemaAndIdentifierKeys, BaseNoPopulateCache):
    pass
