{# Incremental household facts: recompute only households with events landed since the last build. #}

{# Whether the project's code changed since the last passing build of this database (then every
   date is recomputed and every test checks whole tables). run_build_job sets FUPIN_DBT_CODE_CHANGED
   (an environment variable, not a var: a var that differs between builds makes dbt parse the
   project again); unset means changed. #}
{% macro code_changed() -%}
  {{ return(env_var('FUPIN_DBT_CODE_CHANGED', '1') != '0') }}
{%- endmacro %}

{# Latest ingested_at in the event store, stored with the rows a build writes (their watermark). #}
{% macro source_watermark_sql() -%}
  (select max(ingested_at) from {{ source('warehouse', 'events') }})
{%- endmacro %}

{% macro facts_watermark_sql() -%}
  coalesce((select max(source_watermark) from {{ this }}), toDateTime64(0, 3, 'UTC'))
{%- endmacro %}

{# Filter on a household_id column: every household on a full build, the changed ones otherwise.
   The event store as landed (no FINAL): a redelivered copy only makes its household recomputed. #}
{% macro changed_households_filter() -%}
  {%- if is_incremental() -%}
    household_id in (
        select household_id from {{ source('warehouse', 'events') }}
        where ingested_at > {{ facts_watermark_sql() }}
    )
  {%- else -%}
    1
  {%- endif -%}
{%- endmacro %}

{# Per household with newly landed events: the earliest valid date among them (incremental only). #}
{% macro changed_from_sql() -%}
  {%- if is_incremental() -%}
    select household_id, min(toDate(occurred_at)) as changed_from
    from {{ source('warehouse', 'events') }}
    where ingested_at > {{ facts_watermark_sql() }}
    group by household_id
  {%- else -%}
    select '' as household_id, toDate('1970-01-01') as changed_from where 0
  {%- endif -%}
{%- endmacro %}

{# Dates whose household facts were rebuilt since int_village_figures' last build (all on a full
   build, a code change or a new context: the pre-hook empties the table then). #}
{% macro rebuilt_dates_filter() -%}
  {%- if is_incremental() and not code_changed() -%}
    reference_date in (
        select distinct reference_date from {{ ref('int_household_facts') }}
        where built_at > (select coalesce(max(built_at), toDateTime64(0, 3, 'UTC')) from {{ this }})
    )
  {%- else -%}
    1
  {%- endif -%}
{%- endmacro %}

{# Month ends of the series whose village figures changed since this mart's last build of them
   (all on a full build, a code change or a new context), plus extra_condition's. #}
{% macro changed_dates_filter(extra_condition=none) -%}
  {%- if is_incremental() and not code_changed() -%}
    (reference_date in (
        select distinct reference_date from {{ ref('int_village_figures') }}
        where built_at > (
            select coalesce(max(built_at), toDateTime64(0, 3, 'UTC')) from {{ this }}
            where reference_date in {{ series_dates_array() }} and build_key = {{ build_key('reference_date') }}
        )
    ){%- if extra_condition %} or ({{ extra_condition }}){%- endif -%})
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

{# Pre-hook of the accumulating marts, replaced one build at a time (insert_overwrite: build_key
   is the partition, so a build swaps whole partitions instead of a delete mutation's latency). A
   mart stored before it was partitioned so is first copied into that layout, every build's rows
   kept. #}
{% macro partition_by_build_key() %}
  {% if execute %}
    {% set rows = run_query("select partition_key from system.tables where database = '" ~ this.schema
                            ~ "' and name = '" ~ this.identifier ~ "'") %}
    {% if rows and rows.rows | length > 0 and rows.columns[0].values()[0] != 'build_key' %}
      {% set copy = this.incorporate(path={"identifier": this.identifier ~ '__partitioned'}) %}
      {% do run_query("drop table if exists " ~ copy) %}
      {% do run_query("create table " ~ copy ~ " engine = MergeTree partition by build_key order by "
                      ~ config.get('order_by') ~ " as select * from " ~ this) %}
      {% do run_query("exchange tables " ~ this ~ " and " ~ copy) %}
      {% do run_query("drop table " ~ copy) %}
    {% endif %}
  {% endif %}
{% endmacro %}
