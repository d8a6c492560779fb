"""The chdb client behind a dbt project's adapter, for tests of what it returns."""

import pytest


@pytest.fixture
def client(project):
    """The ChdbClient of an open adapter connection (a session on this process's engine)."""
    with project.adapter.connection_named("chdb_client_test"):
        yield project.adapter.connections.get_thread_connection().handle
