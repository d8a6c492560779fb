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

{# The watermark of a table built from the events (this model's, or `relation`'s). In the household
   facts, the latest of the rows at D is the latest of all (a build that writes a household's rows
   writes its row at D, the last date), and D's rows are one key range: read those only. #}
{% macro facts_watermark_sql(relation=none) -%}
  {%- set rel = relation or this -%}
  coalesce((select max(source_watermark) from {{ rel }}
            {%- if rel.identifier == 'int_household_facts' %} where reference_date = {{ as_of_date() }}{% endif %}),
           toDateTime64(0, 3, 'UTC'))
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
   (all on a full build, a code change or a new context), plus extra_condition's; with_period: the
   mart's build key holds the assessment period (build_key). #}
{% macro changed_dates_filter(extra_condition=none, with_period=false) -%}
  {%- if is_incremental() and not code_changed() -%}
    (reference_date in (
        select distinct reference_date from {{ ref('int_village_figures') }}
        where built_at > (
            select coalesce(max(built_at), toDateTime64(0, 3, 'UTC')) from {{ this }}
            where reference_date in {{ series_dates_array() }}
              and build_key = {{ build_key('reference_date', with_period=with_period) }}
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
      {#- every row has the same context: one granule tells (any() would read the whole table) -#}
      {% set rows = run_query("select context from " ~ this ~ " limit 1") %}
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
    {#- dbt-clickhouse creates the table with `partition by (build_key)`: the same layout -#}
    {% if rows and rows.rows | length > 0 and rows.columns[0].values()[0].strip('()') != 'build_key' %}
      {% set copy = this.incorporate(path={"identifier": this.identifier ~ '__partitioned'}) %}
      {% do run_query("drop table if exists " ~ copy) %}
      {% do run_query("create table " ~ copy ~ " engine = MergeTree partition by build_key order by "
                      ~ config.get('order_by') ~ " as select * from " ~ this) %}
      {% do run_query("exchange tables " ~ this ~ " and " ~ copy) %}
      {% do run_query("drop table " ~ copy) %}
    {% endif %}
  {% endif %}
{% endmacro %}

{# on-run-start: the scope of the staging tests' `new_events` (macros/tests/where_scope.sql), once
   per build in a one-row table: the household facts' watermark before this build and the earliest
   valid time among the events landed since. Each test then reads two constants (partition pruning
   on occurred_at) instead of scanning the facts and the event store's ingested_at again. Only when
   the tests are scoped (incremental, code unchanged, facts built). #}
{% macro record_new_events_scope() %}
  {% if execute and not flags.FULL_REFRESH and not code_changed() %}
    {% set facts = adapter.get_relation(none, target.schema, 'int_household_facts') %}
    {% if facts is not none %}
      {% set scope = api.Relation.create(schema=target.schema, identifier='dbt_new_events_scope') %}
      {% set events = api.Relation.create(schema=source_db(), identifier='events') %}
      {#- the watermark twice, not the outer column in the inner query: ClickHouse computes a scalar
          subquery once, a correlated one as a join (ten times slower here) -#}
      {% set watermark = facts_watermark_sql(facts) %}
      {% do run_query("create or replace table " ~ scope ~ " engine = MergeTree order by tuple() as
          select " ~ watermark ~ " as watermark,
                 (select coalesce(min(occurred_at), toDateTime64('2299-12-31', 3, 'UTC')) from " ~ events ~ "
                  where ingested_at > " ~ watermark ~ ") as first_valid") %}
    {% endif %}
  {% endif %}
{% endmacro %}

{# Post-hook of the household facts on a full build: merge the parts the big insert wrote into one
   now. Left to the background, that merge (the whole table) would run during the next builds,
   taking a core from them (the first incremental build after a full one lost seconds to it). #}
{% macro merge_parts_after_full_build() %}
  {% if execute and not is_incremental() %}
    {% do run_query("optimize table " ~ this ~ " final") %}
  {% endif %}
{% endmacro %}
