{# Shared pieces of the marts. #}

{# A rate beside its numerator and denominator: null, never 0 or 1, on a zero denominator. #}
{% macro rate(numerator, denominator) -%}
  if(({{ denominator }}) = 0, NULL, toFloat64({{ numerator }}) / ({{ denominator }}))
{%- endmacro %}

{# Figures at every level from the village figures (int_village_figures): each region's row is
   the roll-up of its villages (the region code is the village code's prefix at the level), so no
   household row is read more than once however many levels there are. columns: names of
   int_village_figures' parts or of the figures derived from them (rolled_up). #}
{% macro village_rollup(date_filter, columns) -%}
    select
        region_key as region_code,
        level,
        reference_date,
        {%- for c in columns %}
        {{ rolled_up(c) }} as {{ c }}{{ "," if not loop.last }}
        {%- endfor %}
    from (
        select v.*, lv.level as level, substring(v.region_code, 1, lv.code_length) as region_key
        from (select * from {{ ref('int_village_figures') }} where {{ date_filter }}) as v
        cross join {{ ref('region_levels') }} as lv
    ) as f
    group by region_key, level, reference_date
{%- endmacro %}

{# A figure of a region from its villages' parts (f.*: qualified, not the figure's own alias):
   counts add up; means from summed parts, the income median from the villages' income values. #}
{% macro rolled_up(name) -%}
  {%- set derived = {
      'income_mean_per_capita': 'if(sum(f.income_assessed_households) = 0, NULL, sum(f.income_per_capita_sum) / sum(f.income_assessed_households))',
      'income_median_per_capita': 'if(sum(f.income_assessed_households) = 0, NULL, quantileExactInclusiveArray(0.5)(f.income_per_capita_values))',
      'income_change_mean_per_capita': 'if(sum(f.income_change_known_households) = 0, NULL, sum(f.income_change_sum_per_capita) / sum(f.income_change_known_households))',
      'visit_months_in_period': 'max(f.visit_months_in_period)',
  } -%}
  {{- derived.get(name, 'sum(f.' ~ name ~ ')') -}}
{%- endmacro %}

{# The additive parts of every mart figure, per village and date: (name, aggregate over the
   household facts of int_village_figures). The census figures first, in the census mart's order. #}
{% macro village_parts() -%}
  {%- set parts = [
      ('households_total', 'count()'),
      ('persons_total', 'sum(living_members)'),
      ('registered_households', 'countIf(is_registered = 1)'),
      ('registered_persons', 'sumIf(living_members, is_registered = 1)'),
  ] -%}
  {%- for s in ['poor', 'exited', 'returned', 'non_registered'] -%}
    {%- do parts.append((s ~ '_households', "countIf(status = '" ~ s ~ "')")) -%}
    {%- do parts.append((s ~ '_persons', "sumIf(living_members, status = '" ~ s ~ "')")) -%}
  {%- endfor -%}
  {%- do parts.append(('remaining_poor_households', 'countIf(is_remaining_poor = 1)')) -%}
  {%- do parts.append(('remaining_poor_persons', 'sumIf(living_members, is_remaining_poor = 1)')) -%}
  {%- for s in ['open', 'eliminated'] -%}
    {%- do parts.append(('monitoring_' ~ s ~ '_households', "countIf(monitoring_risk_state = '" ~ s ~ "')")) -%}
    {%- do parts.append(('monitoring_' ~ s ~ '_persons', "sumIf(living_members, monitoring_risk_state = '" ~ s ~ "')")) -%}
  {%- endfor -%}
  {%- for c in ['unstable_exited', 'edge', 'sudden_hardship'] -%}
    {%- for s in ['open', 'eliminated'] -%}
      {%- do parts.append(('monitoring_' ~ c ~ '_' ~ s ~ '_households',
                           "countIf(monitoring_category = '" ~ c ~ "' and monitoring_risk_state = '" ~ s ~ "')")) -%}
      {%- do parts.append(('monitoring_' ~ c ~ '_' ~ s ~ '_persons',
                           "sumIf(living_members, monitoring_category = '" ~ c ~ "' and monitoring_risk_state = '" ~ s ~ "')")) -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- for g in guarantee_domains() -%}
    {%- for v in ['met', 'not_met', 'unverified'] -%}
      {%- do parts.append(('guarantee_' ~ g ~ '_' ~ v ~ '_households',
                           "countIf(is_registered = 1 and guarantee_" ~ g ~ " = '" ~ v ~ "')")) -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- set income = 'is_registered = 1 and income_per_capita is not null' -%}
  {%- set change = 'is_registered = 1 and income_per_capita_previous_year is not null' -%}
  {%- do parts.extend([
      ('income_assessed_households', 'countIf(' ~ income ~ ')'),
      ('income_line_known_households', 'countIf(is_registered = 1 and income_above_line is not null)'),
      ('income_above_line_households', 'countIf(is_registered = 1 and income_above_line = 1)'),
      ('income_change_households', 'countIf(' ~ change ~ ')'),
  ]) -%}
  {%- for c in poverty_causes() -%}
    {%- do parts.append(('cause_' ~ c ~ '_households', "countIf(is_registered = 1 and has(poverty_causes, '" ~ c ~ "'))")) -%}
  {%- endfor -%}
  {%- do parts.extend([
      ('dibao_registered_households', 'countIf(is_registered = 1 and on_dibao = 1)'),
      ('tekun_registered_households', 'countIf(is_registered = 1 and on_tekun = 1)'),
      ('insured_persons', 'sumIf(persons_insured, is_registered = 1)'),
      ('compulsory_dropouts_persons', 'sumIf(compulsory_dropouts, is_registered = 1)'),
      ('unsafe_house_households', "countIf(is_registered = 1 and house_grade in ('C', 'D'))"),
      ('unsafe_water_households', 'countIf(is_registered = 1 and water_safe = 0)'),
  ]) -%}
  {#- parts of the income mean and median and of the mean change (rolled_up) -#}
  {%- do parts.extend([
      ('income_per_capita_sum', 'sumIf(assumeNotNull(income_per_capita), ' ~ income ~ ')'),
      ('income_per_capita_values', 'groupArrayIf(assumeNotNull(income_per_capita), ' ~ income ~ ')'),
      ('income_change_known_households', 'countIf(' ~ change ~ ' and income_per_capita is not null)'),
      ('income_change_sum_per_capita', 'sumIf(assumeNotNull(income_per_capita - income_per_capita_previous_year), '
                                        ~ change ~ ' and income_per_capita is not null)'),
  ]) -%}
  {#- assessment: findings of each household's latest check, classified by its status at the check -#}
  {%- set registered_at_check = "status_at_check in ('poor', 'returned', 'exited')" -%}
  {%- do parts.extend([
      ('checked_registered_households', 'countIf(check_finding is not null and ' ~ registered_at_check ~ ')'),
      ('wrongly_identified_households', "countIf(check_finding = 'wrongly_identified' and " ~ registered_at_check ~ ')'),
      ('checked_exited_households', "countIf(check_finding is not null and status_at_check = 'exited')"),
      ('checked_exited_persons', "sumIf(living_members, check_finding is not null and status_at_check = 'exited')"),
      ('wrongly_exited_households', "countIf(check_finding = 'wrongly_exited' and status_at_check = 'exited')"),
      ('wrongly_exited_persons', "sumIf(living_members, check_finding = 'wrongly_exited' and status_at_check = 'exited')"),
      ('checked_non_registered_households', "countIf(check_finding is not null and status_at_check = 'non_registered')"),
      ('checked_non_registered_persons', "sumIf(living_members, check_finding is not null and status_at_check = 'non_registered')"),
      ('missed_households', "countIf(check_finding = 'missed' and status_at_check = 'non_registered')"),
      ('missed_persons', "sumIf(living_members, check_finding = 'missed' and status_at_check = 'non_registered')"),
      ('surveyed_households', 'countIf(satisfied is not null)'),
      ('satisfied_households', 'countIf(satisfied = 1)'),
      ('support_scope_households', 'countIf(is_registered = 1)'),
      ('households_with_cadre', 'countIf(is_registered = 1 and has_cadre = 1)'),
      ('visit_scope_households', 'countIf(is_registered = 1 and visits_compliant is not null)'),
      ('visit_compliant_households', 'countIf(is_registered = 1 and visits_compliant = 1)'),
      ('visit_months_in_period', 'max(visit_months_required)'),
      ('returned_in_period_households', 'countIf(returned_in_period = 1)'),
      ('ever_exited_households', "countIf(status in ('exited', 'returned'))"),
  ]) -%}
  {#- consistency -#}
  {%- do parts.extend([
      ('dibao_households', 'countIf(on_dibao = 1)'),
      ('dibao_households_registered', 'countIf(on_dibao = 1 and is_registered = 1)'),
      ('dibao_households_not_registered', 'countIf(on_dibao = 1 and is_registered = 0)'),
      ('missed_candidate_households', "countIf(is_registered = 0 and coalesce(monitoring_risk_state, '') != 'open'
                and (on_dibao = 1 or on_tekun = 1 or coalesce(income_above_line = 0, false)))"),
      ('invalid_transitions', 'sum(invalid_transitions)'),
  ]) -%}
  {{ return(parts) }}
{%- endmacro %}

{# The census mart's figures from the village parts, in the mart's column order. #}
{% macro census_figures() -%}
  {%- set names = [] -%}
  {%- for name, expr in village_parts() -%}
    {%- if name == 'income_assessed_households' -%}
      {%- do names.extend(['income_assessed_households', 'income_mean_per_capita', 'income_median_per_capita']) -%}
    {%- elif name == 'income_change_households' -%}
      {%- do names.extend(['income_change_households', 'income_change_mean_per_capita']) -%}
    {%- elif name == 'income_per_capita_sum' -%}
      {%- break -%}
    {%- else -%}
      {%- do names.append(name) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(names) }}
{%- endmacro %}

{# The series month ends as a SQL array. #}
{% macro series_dates_array() -%}
  [{%- for d in series_month_ends() -%}toDate('{{ d }}'){{ ", " if not loop.last }}{%- endfor -%}]
{%- endmacro %}

{# Key of one build's rows in an accumulating mart: the reference date and the cut-off, and for
   the assessment marts (with_period) an assessment period other than the default one, so that a
   period's build keeps the default build of the same date instead of replacing it. #}
{% macro build_key(date_column, with_period=false) -%}
  {%- set p = var('period_start', none) if with_period else none -%}
  concat(toString({{ date_column }}), '|', '{{ cutoff_iso() }}'{% if p %}, '|{{ p }}'{% endif %})
{%- endmacro %}

{# The assessment period's start as the marts store it: null for the default period (1 January of
   the reference date's year), else the period_start var. #}
{% macro period_start_literal() -%}
  {%- set p = var('period_start', none) -%}
  {%- if p -%} CAST(toDate('{{ p }}') AS Nullable(Date)) {%- else -%} CAST(NULL AS Nullable(Date)) {%- endif -%}
{%- endmacro %}

{% set poverty_causes = ['illness', 'disability', 'schooling', 'disaster', 'marriage', 'land', 'water',
                         'skills', 'capital', 'labour', 'transport', 'motivation', 'other'] %}

{% macro poverty_causes() -%}
  {{ return(['illness', 'disability', 'schooling', 'disaster', 'marriage', 'land', 'water',
             'skills', 'capital', 'labour', 'transport', 'motivation', 'other']) }}
{%- endmacro %}

{% macro guarantee_domains() -%}
  {{ return(['income', 'education', 'medical', 'housing', 'water', 'all']) }}
{%- endmacro %}

{# Census figures of every region at every level for the village figures matching date_filter. #}
{% macro census_select(date_filter) -%}
with aggregated as (

    {{ village_rollup(date_filter, census_figures()) }}

)

select
    region_code,
    level,
    reference_date,
    {{ cutoff_literal() }} as cutoff,
    {{ build_key('reference_date') }} as build_key,
    aggregated.* except (region_code, level, reference_date),
    {% for g in guarantee_domains() %}
    {{ rate('guarantee_' ~ g ~ '_met_households', 'registered_households') }} as guarantee_{{ g }}_met_rate,
    {% endfor %}
    {{ rate('income_above_line_households', 'income_line_known_households') }} as income_above_line_rate,
    {{ rate('dibao_registered_households', 'registered_households') }} as dibao_registered_rate,
    {{ rate('insured_persons', 'registered_persons') }} as insurance_rate,
    toUInt8(compulsory_dropouts_persons = 0) as compulsory_dropouts_within_threshold,
    toUInt8(unsafe_house_households = 0) as unsafe_house_within_threshold,
    toUInt8(unsafe_water_households = 0) as unsafe_water_within_threshold,
    if(registered_persons = 0, NULL, toUInt8(insured_persons = registered_persons)) as insurance_rate_within_threshold,
    now64(3, 'UTC') as built_at
from aggregated
{%- endmacro %}

{# Assessment figures of every region at every level for the village figures matching date_filter. #}
{% macro assessment_select(date_filter) -%}
with aggregated as (

    {{ village_rollup(date_filter, [
        'remaining_poor_persons', 'checked_registered_households', 'wrongly_identified_households',
        'checked_exited_households', 'checked_exited_persons', 'wrongly_exited_households', 'wrongly_exited_persons',
        'checked_non_registered_households', 'checked_non_registered_persons', 'missed_households', 'missed_persons',
        'surveyed_households', 'satisfied_households', 'support_scope_households', 'households_with_cadre',
        'visit_scope_households', 'visit_compliant_households', 'visit_months_in_period',
        'returned_in_period_households', 'ever_exited_households']) }}

),

cadre_groups as (

    -- cadres serving the same villages with the same load, counted together: a region's cadres
    -- come from a few such groups rather than from every cadre once per level
    select reference_date, villages, cadre_households, count() as cadres
    from {{ ref('int_cadre_loads') }}
    where {{ date_filter }}
    group by reference_date, villages, cadre_households

),

cadres as (

    -- each region's cadres (a cadre counts once in each region where it serves), by load
    select region_code, level, reference_date, sum(cadres) as cadres_active,
           groupArray((cadre_households, cadres)) as cadre_loads
    from (
        select
            g.reference_date as reference_date,
            lv.level as level,
            arrayJoin(arrayDistinct(arrayMap(v -> substring(v, 1, lv.code_length), g.villages))) as region_code,
            g.cadre_households as cadre_households,
            g.cadres as cadres
        from cadre_groups as g
        cross join {{ ref('region_levels') }} as lv
    )
    group by region_code, level, reference_date

),

alerts as (

    select
        lv.level as level,
        substring(a.region_code, 1, lv.code_length) as region_code,
        a.reference_date as reference_date,
        countIf(toDate(a.raised_at) between a.period_start and a.reference_date) as alerts_raised,
        countIf(a.resolved_at is not null and toDate(a.resolved_at) between a.period_start and a.reference_date) as alerts_resolved,
        countIf(toDate(a.raised_at) <= a.reference_date
                and (a.resolved_at is null or toDate(a.resolved_at) > a.reference_date)) as alerts_open,
        quantileExactInclusiveIf(0.5)(a.response_days, toDate(a.raised_at) between a.period_start and a.reference_date
                      and a.response_days is not null and toDate(a.first_response_at) <= a.reference_date) as alert_response_median_days
    from (
        select h.*, d.reference_date, {{ period_start() }} as period_start
        from {{ ref('int_alert_handling') }} as h
        cross join (
            select distinct reference_date from {{ ref('int_village_figures') }} where {{ date_filter }}
        ) as d
    ) as a
    cross join {{ ref('region_levels') }} as lv
    group by level, region_code, reference_date

),

population as (

    select
        lv.level as level,
        substring(p.region_code, 1, lv.code_length) as region_code,
        toUInt16(p.year) as year,
        sum(p.agricultural_population) as agricultural_population
    from {{ source('warehouse', 'reference_population') }} as p
    cross join {{ ref('region_levels') }} as lv
    group by level, region_code, year

),

zones as (

    select region_code, any(zone) as zone
    from {{ source('warehouse', 'reference_regions') }}
    group by region_code

),

joined as (

    select
        a.region_code as region_code,
        a.level as level,
        a.reference_date as reference_date,
        a.* except (region_code, level, reference_date),
        coalesce(nullIf(z_own.zone, ''), nullIf(z_county.zone, ''), 'central') as zone,
        p.agricultural_population as agricultural_population,
        c.cadres_active as region_cadres,
        c.cadre_loads as cadre_loads,
        al.alerts_raised as alerts_raised,
        al.alerts_resolved as alerts_resolved,
        al.alerts_open as alerts_open,
        al.alert_response_median_days as alert_response_median_days
    from aggregated as a
    left join zones as z_own on z_own.region_code = a.region_code
    left join zones as z_county on z_county.region_code = substring(a.region_code, 1, 6)
    left join population as p
        on p.region_code = a.region_code and p.level = a.level and p.year = toYear(a.reference_date)
    left join cadres as c
        on c.region_code = a.region_code and c.level = a.level and c.reference_date = a.reference_date
    left join alerts as al
        on al.region_code = a.region_code and al.level = a.level and al.reference_date = a.reference_date
    settings join_use_nulls = 1

),

rated as (

    select
        j.*,
        t.comprehensive_incidence_max as comprehensive_incidence_max,
        t.wrong_exit_rate_max as wrong_exit_rate_max,
        t.missed_rate_max as missed_rate_max,
        t.satisfaction_rate_min as satisfaction_rate_min,
        t.support_coverage_min as support_coverage_min,
        t.cadre_households_max as cadre_households_max,
        t.visit_compliance_min as visit_compliance_min,
        t.village_incidence_max as village_incidence_max,
        remaining_poor_persons + wrongly_exited_persons + missed_persons as comprehensive_incidence_numerator,
        {{ rate('remaining_poor_persons', 'coalesce(agricultural_population, 0)') }} as poverty_incidence_rate,
        {{ rate('remaining_poor_persons + wrongly_exited_persons + missed_persons', 'coalesce(agricultural_population, 0)') }} as comprehensive_incidence_rate,
        {{ rate('wrongly_exited_persons', 'checked_exited_persons') }} as wrong_exit_rate,
        {{ rate('missed_persons', 'checked_non_registered_persons') }} as missed_rate,
        if(checked_registered_households = 0, NULL, 1 - wrongly_identified_households / checked_registered_households) as identification_accuracy_rate,
        if(checked_exited_households = 0, NULL, 1 - wrongly_exited_households / checked_exited_households) as exit_accuracy_rate,
        {{ rate('satisfied_households', 'surveyed_households') }} as satisfaction_rate,
        {{ rate('households_with_cadre', 'support_scope_households') }} as support_coverage_rate,
        {{ rate('visit_compliant_households', 'visit_scope_households') }} as visit_compliance_rate,
        {{ rate('returned_in_period_households', 'ever_exited_households') }} as return_rate,
        toUInt32(coalesce(region_cadres, 0)) as cadres_active,
        toUInt32(arraySum(arrayMap(x -> if(x.1 > coalesce(t.cadre_households_max, 5), x.2, 0), cadre_loads))) as cadres_over_limit,
        if(coalesce(region_cadres, 0) = 0, NULL, toFloat64(households_with_cadre) / region_cadres) as households_per_cadre
    from joined as j
    left join {{ ref('indicator_thresholds') }} as t on t.level = j.level and t.zone = j.zone
    settings join_use_nulls = 1

)

select
    region_code,
    level,
    reference_date,
    {{ cutoff_literal() }} as cutoff,
    {{ period_start_literal() }} as period_start,
    {{ build_key('reference_date', with_period=true) }} as build_key,
    zone,
    coalesce(agricultural_population, 0) as agricultural_population,
    remaining_poor_persons as poverty_incidence_numerator,
    coalesce(agricultural_population, 0) as poverty_incidence_denominator,
    poverty_incidence_rate,
    comprehensive_incidence_numerator,
    coalesce(agricultural_population, 0) as comprehensive_incidence_denominator,
    comprehensive_incidence_rate,
    if(comprehensive_incidence_rate is null or comprehensive_incidence_max is null, NULL,
       toUInt8(comprehensive_incidence_rate < comprehensive_incidence_max)) as comprehensive_incidence_within_threshold,
    wrongly_exited_persons,
    checked_exited_persons,
    wrong_exit_rate,
    if(wrong_exit_rate is null or wrong_exit_rate_max is null, NULL, toUInt8(wrong_exit_rate < wrong_exit_rate_max)) as wrong_exit_rate_within_threshold,
    missed_persons,
    checked_non_registered_persons,
    missed_rate,
    if(missed_rate is null or missed_rate_max is null, NULL, toUInt8(missed_rate < missed_rate_max)) as missed_rate_within_threshold,
    wrongly_identified_households,
    checked_registered_households,
    identification_accuracy_rate,
    wrongly_exited_households,
    checked_exited_households,
    exit_accuracy_rate,
    missed_households,
    checked_non_registered_households,
    satisfied_households,
    surveyed_households,
    satisfaction_rate,
    if(satisfaction_rate is null or satisfaction_rate_min is null, NULL, toUInt8(satisfaction_rate >= satisfaction_rate_min)) as satisfaction_rate_within_threshold,
    households_with_cadre,
    support_scope_households,
    support_coverage_rate,
    if(support_coverage_rate is null or support_coverage_min is null, NULL, toUInt8(support_coverage_rate >= support_coverage_min)) as support_coverage_rate_within_threshold,
    cadres_active,
    cadres_over_limit,
    households_per_cadre,
    toUInt8(cadres_over_limit = 0) as cadre_load_within_threshold,
    visit_months_in_period,
    visit_compliant_households,
    visit_scope_households,
    visit_compliance_rate,
    if(visit_compliance_rate is null or visit_compliance_min is null, NULL, toUInt8(visit_compliance_rate >= visit_compliance_min)) as visit_compliance_rate_within_threshold,
    returned_in_period_households,
    ever_exited_households,
    return_rate,
    coalesce(alerts_raised, 0) as alerts_raised,
    coalesce(alerts_resolved, 0) as alerts_resolved,
    coalesce(alerts_open, 0) as alerts_open,
    alert_response_median_days,
    -- Readiness needs every figure it uses measured (indicators.md, exit readiness): a null rate
    -- (nothing checked or surveyed yet, no population) or a missing threshold is not within it.
    if(level != 'county', NULL,
       toUInt8(coalesce(comprehensive_incidence_rate < comprehensive_incidence_max, 0)
               and coalesce(wrong_exit_rate < wrong_exit_rate_max, 0)
               and coalesce(missed_rate < missed_rate_max, 0)
               and coalesce(satisfaction_rate >= satisfaction_rate_min, 0))) as county_exit_ready,
    if(level != 'village', NULL,
       toUInt8(coalesce(poverty_incidence_rate < village_incidence_max, 0))) as village_exit_ready,
    now64(3, 'UTC') as built_at
from rated
{%- endmacro %}
