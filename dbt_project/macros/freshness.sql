{# dbt source freshness on chdb: the adapter returns date-times as text (JSONCompact), and dbt
   wants datetime objects. Same query as dbt's own, converted here (epoch milliseconds, UTC). An
   empty table (max is 1970) yields no time, as dbt expects of a source with no rows. #}
{% macro chdb__collect_freshness(source, loaded_at_field, filter) %}
  {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
    select
      toInt64(toUnixTimestamp64Milli(toDateTime64(max({{ loaded_at_field }}), 3, 'UTC'))) as max_loaded_at,
      toInt64(toUnixTimestamp64Milli(now64(3, 'UTC'))) as snapshotted_at
    from {{ source }}
    {% if filter %}
    where {{ filter }}
    {% endif %}
  {%- endcall %}
  {% set res = load_result('collect_freshness') %}
  {% set dt = modules.datetime %}
  {% set row = res.table.rows[0] %}
  {% set loaded = row[0] | int %}
  {% set max_loaded_at = dt.datetime.fromtimestamp(loaded / 1000, modules.pytz.utc) if loaded > 0 else none %}
  {% set snapshotted_at = dt.datetime.fromtimestamp((row[1] | int) / 1000, modules.pytz.utc) %}
  {% do res.update({'table': [[max_loaded_at, snapshotted_at]]}) %}
  {{ return(res) }}
{% endmacro %}
