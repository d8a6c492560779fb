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
      {#- the events landed since the household facts were last built, from their earliest valid
          time on (the event store's partitions), filtered before FINAL merges (a redelivered copy
          is the newer one, the one FINAL keeps); both bounds recorded once per build by the
          on-run-start hook (record_new_events_scope) -#}
      {%- set scope = api.Relation.create(database=relation.database, schema=relation.schema, identifier='dbt_new_events_scope') -%}
      {%- do return('(select * from ' ~ relation ~ ' where occurred_at >= (select first_valid from ' ~ scope
                    ~ ') and ingested_at > (select watermark from ' ~ scope
                    ~ ') settings optimize_move_to_prewhere_if_final = 1) dbt_subquery') -%}
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
