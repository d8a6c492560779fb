{# Incremental household facts: recompute only households with events landed since the last build. #}

{% macro facts_watermark_sql() -%}
  coalesce((select max(source_watermark) from {{ this }}), toDateTime64(0, 3, 'UTC'))
{%- endmacro %}

{# Filter on a household_id column: every household on a full build, the changed ones otherwise. #}
{% macro changed_households_filter() -%}
  {%- if is_incremental() -%}
    household_id in (
        select household_id from {{ source('warehouse', 'events_latest') }}
        where ingested_at > {{ facts_watermark_sql() }}
    )
  {%- else -%}
    1
  {%- endif -%}
{%- endmacro %}

{# Pre-hook: when D, T or the series changed since the stored facts were built, start again. #}
{% macro reset_facts_if_context_changed() %}
  {% if execute %}
    {% set existing = adapter.get_relation(this.database, this.schema, this.identifier) %}
    {% if existing is not none %}
      {% set rows = run_query("select any(context) from " ~ this) %}
      {% set stored = rows.columns[0].values()[0] if rows and rows.rows | length > 0 else none %}
      {% if stored is not none and stored != '' and stored != build_context() %}
        {% do run_query("truncate table " ~ this) %}
      {% endif %}
    {% endif %}
  {% endif %}
{% endmacro %}
