"""dbt adapter plugin for embedded ClickHouse (chdb), built on dbt-clickhouse.

``type: chdb`` reuses every dbt-clickhouse macro and materialization (``dependencies``); only the
client differs: it opens ``chdb.connect(path)`` in the dbt process instead of a network socket.
"""

from dbt.adapters.base import AdapterPlugin
from dbt.adapters.chdb.connections import ChdbConnectionManager  # noqa: F401
from dbt.adapters.chdb.credentials import ChdbCredentials
from dbt.adapters.chdb.impl import ChdbAdapter
from dbt.include import chdb as chdb_include

Plugin = AdapterPlugin(
    adapter=ChdbAdapter,
    credentials=ChdbCredentials,
    include_path=chdb_include.PACKAGE_PATH,
    dependencies=["clickhouse"],
)
