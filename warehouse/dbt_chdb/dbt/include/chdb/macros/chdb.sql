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

{# dbt's run_hooks sends a bare `commit;` before the hooks configured with `transaction: false`
   (to leave the transaction psycopg2 opens). ClickHouse has no such transaction, and answers a
   COMMIT outside one with INVALID_TRANSACTION, so every such hook failed. Not dispatched by dbt:
   overridden by name, as adapters without transactions do; the order of the hooks is dbt's. #}
{% macro run_hooks(hooks, inside_transaction=True) %}
  {% for hook in hooks | selectattr('transaction', 'equalto', inside_transaction) %}
    {% set rendered = render(hook.get('sql')) | trim %}
    {% if (rendered | length) > 0 %}
      {% call statement(auto_begin=inside_transaction) %}
        {{ rendered }}
      {% endcall %}
    {% endif %}
  {% endfor %}
{% endmacro %}
