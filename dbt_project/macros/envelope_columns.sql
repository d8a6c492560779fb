{#- The envelope columns every staging model carries, in one place (events.md's envelope). -#}
{% macro envelope_columns() -%}
        event_id,
        substring(event_type, position(event_type, '.') + 1) as event_name,
        schema_version,
        household_id,
        person_id,
        region_code,
        occurred_at,
        recorded_at,
        ingested_at
{%- endmacro %}
