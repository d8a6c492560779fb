{# The census context: reference date D, cut-off T, series months and period, from dbt vars. #}

{% macro as_of_date_iso() -%}
  {%- set d = var('as_of_date', none) -%}
  {{- (d | string) if d else modules.datetime.date.today().isoformat() -}}
{%- endmacro %}

{% macro as_of_date() -%}
  toDate('{{ as_of_date_iso() }}')
{%- endmacro %}

{% macro cutoff_iso() -%}
  {%- set t = var('cutoff', none) -%}
  {{- (t | string) if t else '' -}}
{%- endmacro %}

{# SQL literal of T, or NULL when the census is not frozen. #}
{% macro cutoff_literal() -%}
  {%- if cutoff_iso() -%}
    {#- Nullable either way: a mart first built with a cut-off also stores builds without one -#}
    CAST(parseDateTime64BestEffort('{{ cutoff_iso() }}', 3, 'UTC') AS Nullable(DateTime64(3, 'UTC')))
  {%- else -%}
    CAST(NULL AS Nullable(DateTime64(3, 'UTC')))
  {%- endif -%}
{%- endmacro %}

{# Transaction-time filter: only events recorded at or before T count. #}
{% macro within_cutoff(column) -%}
  {%- if cutoff_iso() -%}
    {{ column }} <= parseDateTime64BestEffort('{{ cutoff_iso() }}', 3, 'UTC')
  {%- else -%}
    1
  {%- endif -%}
{%- endmacro %}

{# Start of the assessment period ending at a row's reference date: the var, else 1 January of
   that date's year (so each month end of the series reports its year to date). #}
{% macro period_start(date_column='reference_date') -%}
  {%- set p = var('period_start', none) -%}
  {%- if p -%} toDate('{{ p }}') {%- else -%} toStartOfYear({{ date_column }}) {%- endif -%}
{%- endmacro %}

{# Last days of the series months: the `series_months` whole months ending at D. #}
{% macro series_month_ends() -%}
  {%- set dt = modules.datetime -%}
  {%- set d = dt.date.fromisoformat(as_of_date_iso()) -%}
  {%- set next_day = d + dt.timedelta(days=1) -%}
  {#- the last whole month: D's own month when D is its last day, else the month before -#}
  {%- if next_day.day == 1 -%}
    {%- set last = d -%}
  {%- else -%}
    {%- set last = d.replace(day=1) - dt.timedelta(days=1) -%}
  {%- endif -%}
  {#- month i before the last one, by month index (a `set` inside a Jinja loop does not outlive
      its iteration, so the loop cannot step `last` back) -#}
  {%- set ends = [] -%}
  {%- for i in range(var('series_months', 12) | int) -%}
    {%- set next_month = last.year * 12 + last.month - i -%}
    {%- set first_of_next = dt.date((next_month // 12), (next_month % 12) + 1, 1) -%}
    {%- do ends.append((first_of_next - dt.timedelta(days=1)).isoformat()) -%}
  {%- endfor -%}
  {{- return(ends | reverse | list) -}}
{%- endmacro %}

{# Every date the household facts are computed for: D and the series month ends. #}
{% macro reference_dates_array() -%}
  {%- set dates = series_month_ends() -%}
  {%- if as_of_date_iso() not in dates -%}{%- do dates.append(as_of_date_iso()) -%}{%- endif -%}
  [{%- for d in dates -%}toDate('{{ d }}'){{ ", " if not loop.last }}{%- endfor -%}]
{%- endmacro %}

{# Identity of a build's context, stored with the facts: a change of D, T or series forces a rebuild. #}
{% macro build_context() -%}
  {{- as_of_date_iso() }}|{{ cutoff_iso() }}|{{ var('series_months', 12) }}|{{ var('period_start', none) or '' -}}
{%- endmacro %}

{% macro source_db() -%}
  {{- var('source_database', none) or target.schema -}}
{%- endmacro %}
