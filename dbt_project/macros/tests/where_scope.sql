{# Data tests scoped to what a build changed (the `where` config's keywords), everything on a
   full build, a full refresh or a code change (code_changed()):
   - `new_events`: events landed since the household facts were last built (staging);
   - `rows_built`: the household facts rows of the latest build;
   - `latest_build`: the model's own rows of its latest build (incremental intermediates).
   Any other `where` is a plain condition, as in dbt. #}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- set facts = api.Relation.create(database=relation.database, schema=relation.schema, identifier='int_household_facts') -%}
  {%- if where in ('new_events', 'rows_built', 'latest_build') -%}
    {%- set scoped = execute and not flags.FULL_REFRESH and not code_changed()
                     and adapter.get_relation(facts.database, facts.schema, facts.identifier) is not none -%}
    {%- if not scoped -%}
      {%- do return(relation) -%}
    {%- elif where == 'new_events' -%}
      {#- the households of the new events (the event store's key prefix) and their earliest valid
          time (its partitions) first, so that only their granules are read through FINAL; then the
          new events among them, filtered before FINAL merges (a redelivered copy is the newer one,
          the one FINAL keeps) -#}
      {%- set events = source('warehouse', 'events') -%}
      {%- set watermark = 'coalesce((select max(source_watermark) from ' ~ facts ~ '), toDateTime64(0, 3, \'UTC\'))' -%}
      {%- do return('(select * from ' ~ relation ~ ' where household_id in (select household_id from '
                    ~ events ~ ' where ingested_at > ' ~ watermark ~ ') and occurred_at >= (select min(occurred_at) from '
                    ~ events ~ ' where ingested_at > ' ~ watermark ~ ') and ingested_at > ' ~ watermark
                    ~ ' settings optimize_move_to_prewhere_if_final = 1) dbt_subquery') -%}
    {%- elif where == 'rows_built' -%}
      {#- one build's rows share built_at; through the FINAL view, only the households of those rows
          are merged (household_id is in the key), filtered before the merge -#}
      {%- set latest = '(select max(built_at) from ' ~ facts ~ ')' -%}
      {%- do return('(select * from ' ~ relation ~ ' where household_id in (select household_id from ' ~ facts
                    ~ ' where built_at >= ' ~ latest ~ ') and built_at >= ' ~ latest
                    ~ ' settings optimize_move_to_prewhere_if_final = 1) dbt_subquery') -%}
    {%- else -%}
      {%- do return('(select * from ' ~ relation ~ ' where built_at >= (select max(built_at) from ' ~ relation
                    ~ ')) dbt_subquery') -%}
    {%- endif -%}
  {%- elif where -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}
