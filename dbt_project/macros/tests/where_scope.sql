{# Data tests scoped to what a build changed (the `where` config's two keywords), everything on a
   full build, a full refresh or a code change (run_build_job's var `code_changed`):
   - `new_events`: events landed since the household facts were last built (staging);
   - `rows_built`: the household facts rows of the latest build (their source watermark).
   Any other `where` is a plain condition, as in dbt. #}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- set facts = api.Relation.create(database=relation.database, schema=relation.schema, identifier='int_household_facts') -%}
  {%- if where in ('new_events', 'rows_built') -%}
    {%- set scoped = execute and not flags.FULL_REFRESH and not var('code_changed', true)
                     and adapter.get_relation(facts.database, facts.schema, facts.identifier) is not none -%}
    {%- if not scoped -%}
      {%- do return(relation) -%}
    {%- elif where == 'new_events' -%}
      {%- do return('(select * from ' ~ relation ~ ' where ingested_at > coalesce((select max(source_watermark) from '
                    ~ facts ~ '), toDateTime64(0, 3, \'UTC\'))) dbt_subquery') -%}
    {%- else -%}
      {%- do return('(select * from ' ~ relation ~ ' where source_watermark = (select max(source_watermark) from '
                    ~ facts ~ ')) dbt_subquery') -%}
    {%- endif -%}
  {%- elif where -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}
