"""dbt's concurrency test: models on several threads, each on its own chdb session."""

from dbt.tests.adapter.concurrency.test_concurrency import BaseConcurrency


class TestConcurrency(BaseConcurrency):
    pass
