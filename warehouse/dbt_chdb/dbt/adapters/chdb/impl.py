"""The chdb adapter: dbt-clickhouse's adapter with the chdb connection manager."""

from __future__ import annotations

from typing import Any

from dbt.adapters.base.meta import available
from dbt.adapters.chdb.connections import ChdbConnectionManager
from dbt.adapters.clickhouse.impl import ClickHouseAdapter
from dbt.adapters.clickhouse.logger import logger
from dbt_common.exceptions import DbtRuntimeError


class ChdbAdapter(ClickHouseAdapter):
    ConnectionManager = ChdbConnectionManager

    @classmethod
    def type(cls) -> str:
        return "chdb"

    @available
    def grants_not_applied(self, relation: Any, grant_config: dict[str, Any]) -> None:
        """``grants:`` on chdb: no access management there, so a warning (or, if required, an error)."""
        grants = ", ".join(f"{p} to {', '.join(g) if isinstance(g, list) else g}" for p, g in grant_config.items())
        message = (
            f"chdb has no access management: grants on {relation} not applied ({grants}). "
            "They apply when the project runs on a ClickHouse server target."
        )
        if self.config.credentials.require_grants:
            raise DbtRuntimeError(f"{message} This target sets require_grants: true.")
        logger.warning(message)
