{# chdb reuses every dbt-clickhouse macro through the adapter's dependency on `clickhouse`;
   only what embedded ClickHouse cannot do differs here. #}

{# No users, roles or grants in embedded ClickHouse: `grants:` is a documented no-op with a
   warning (an error with `require_grants: true` in the profile). #}
{% macro chdb__apply_grants(relation, grant_config, should_revoke=True) %}
  {% if grant_config %}
    {% do adapter.grants_not_applied(relation, grant_config) %}
  {% endif %}
{% endmacro %}

{% macro chdb__get_show_grant_sql(relation) %}
  select '' as privilege_type, '' as grantee where 0
{% endmacro %}
