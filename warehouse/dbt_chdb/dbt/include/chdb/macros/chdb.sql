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

{# dbt-clickhouse's snapshot staging query finds new and hard-deleted rows by a LEFT JOIN whose
   unmatched side `is null`. Without join_use_nulls, ClickHouse fills that side with defaults
   (0, ''), so no hard delete was ever seen (invalidate_hard_deletes closed nothing out). The same
   query, with join_use_nulls for all of it: unmatched rows are NULL as the query expects. #}
{% macro chdb__snapshot_staging_table(strategy, source_sql, target_relation) -%}
select * from (
{{ clickhouse__snapshot_staging_table(strategy, source_sql, target_relation) }}
) settings join_use_nulls = 1
{%- endmacro %}

{# dbt.date(): dbt-clickhouse has none, and dbt's default is PostgreSQL's to_date(text, format),
   which ClickHouse lacks. #}
{% macro chdb__date(year, month, day) -%}
    {%- set dt = modules.datetime.date(year, month, day) -%}
    toDate('{{ dt.strftime('%Y-%m-%d') }}')
{%- endmacro %}

{# alter_column_type names the relation by `.render()`: with `--empty`, dbt renders a ref as a
   `(select ... limit 0)` subquery, which dbt-clickhouse's macro put after ALTER TABLE. #}
{% macro chdb__alter_column_type(relation, column_name, new_column_type) -%}
  {% call statement('alter_column_type') %}
    alter table {{ relation.render() }} {{ on_cluster_clause(relation) }} modify column {{ adapter.quote(column_name) }} {{ new_column_type }}
  {% endcall %}
{%- endmacro %}
