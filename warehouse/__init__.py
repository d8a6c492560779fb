"""Warehouse: ClickHouse (chdb or server) client, migrations, the event-store sink, rebuild, service."""
