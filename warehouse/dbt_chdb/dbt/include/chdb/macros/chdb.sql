{# chdb reuses every dbt-clickhouse macro through the adapter's dependency on `clickhouse`. #}
