"""Profile fields of the chdb target: the dbt-clickhouse ones plus the data path."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dbt.adapters.clickhouse.credentials import ClickHouseCredentials


@dataclass
class ChdbCredentials(ClickHouseCredentials):
    #: chdb data path; empty means ``DBT_CHDB_PATH``. One path per process (chdb binds the first).
    path: str = ""
    #: chdb has no access management, so ``grants:`` are not applied: a warning by default, an
    #: error when the target must not build a relation without its grants.
    require_grants: bool = False

    @property
    def type(self) -> str:
        return "chdb"

    @property
    def unique_field(self) -> str:
        return self.path

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.path:
            self.path = os.environ.get("DBT_CHDB_PATH", "")
        # No network: the host/port of dbt-clickhouse are meaningless here.
        self.host = "chdb"

    def _connection_keys(self) -> tuple[str, ...]:
        return ("path", "schema", "custom_settings", "require_grants")
