{# Shared pieces of the marts. #}

{# A rate beside its numerator and denominator: null, never 0 or 1, on a zero denominator. #}
{% macro rate(numerator, denominator) -%}
  if(({{ denominator }}) = 0, NULL, toFloat64({{ numerator }}) / ({{ denominator }}))
{%- endmacro %}

{# Household facts at each level: one row per household and level, keyed by the region prefix. #}
{% macro facts_at_levels(date_filter) -%}
    select
        f.*,
        lv.level as level,
        substring(f.region_code, 1, lv.code_length) as region_key
    from (
        select * from {{ ref('int_household_facts_latest') }}
        where {{ date_filter }}
    ) as f
    cross join {{ ref('region_levels') }} as lv
{%- endmacro %}

{# The series month ends as a SQL array. #}
{% macro series_dates_array() -%}
  [{%- for d in series_month_ends() -%}toDate('{{ d }}'){{ ", " if not loop.last }}{%- endfor -%}]
{%- endmacro %}

{# Key of one build's rows in an accumulating mart: the reference date and the cut-off. #}
{% macro build_key(date_column) -%}
  concat(toString({{ date_column }}), '|', '{{ cutoff_iso() }}')
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

{# Census figures of every region at every level for the facts matching date_filter. #}
{% macro census_select(date_filter) -%}
with facts as (

    {{ facts_at_levels(date_filter) }}

),

guarantees as (

    select
        *,
        multiIf(
            guarantee_income = 'not_met' or guarantee_education = 'not_met' or guarantee_medical = 'not_met'
              or guarantee_housing = 'not_met' or guarantee_water = 'not_met', 'not_met',
            guarantee_income = 'met' and guarantee_education = 'met' and guarantee_medical = 'met'
              and guarantee_housing = 'met' and guarantee_water = 'met', 'met',
            'unverified') as guarantee_all
    from facts

),

aggregated as (

    select
        region_key as region_code,
        level,
        reference_date,
        count() as households_total,
        sum(living_members) as persons_total,
        countIf(is_registered = 1) as registered_households,
        sumIf(living_members, is_registered = 1) as registered_persons,
        countIf(status = 'poor') as poor_households,
        sumIf(living_members, status = 'poor') as poor_persons,
        countIf(status = 'exited') as exited_households,
        sumIf(living_members, status = 'exited') as exited_persons,
        countIf(status = 'returned') as returned_households,
        sumIf(living_members, status = 'returned') as returned_persons,
        countIf(status = 'non_registered') as non_registered_households,
        sumIf(living_members, status = 'non_registered') as non_registered_persons,
        countIf(is_remaining_poor = 1) as remaining_poor_households,
        sumIf(living_members, is_remaining_poor = 1) as remaining_poor_persons,
        countIf(monitoring_risk_state = 'open') as monitoring_open_households,
        sumIf(living_members, monitoring_risk_state = 'open') as monitoring_open_persons,
        countIf(monitoring_risk_state = 'eliminated') as monitoring_eliminated_households,
        sumIf(living_members, monitoring_risk_state = 'eliminated') as monitoring_eliminated_persons,
        {% for c in ['unstable_exited', 'edge', 'sudden_hardship'] %}
        countIf(monitoring_category = '{{ c }}' and monitoring_risk_state = 'open') as monitoring_{{ c }}_open_households,
        countIf(monitoring_category = '{{ c }}' and monitoring_risk_state = 'eliminated') as monitoring_{{ c }}_eliminated_households,
        {% endfor %}
        {% for g in guarantee_domains() %}
        countIf(is_registered = 1 and guarantee_{{ g }} = 'met') as guarantee_{{ g }}_met_households,
        countIf(is_registered = 1 and guarantee_{{ g }} = 'not_met') as guarantee_{{ g }}_not_met_households,
        countIf(is_registered = 1 and guarantee_{{ g }} = 'unverified') as guarantee_{{ g }}_unverified_households,
        {% endfor %}
        countIf(is_registered = 1 and income_per_capita is not null) as income_assessed_households,
        avgIf(income_per_capita, is_registered = 1 and income_per_capita is not null) as income_mean_per_capita,
        quantileExactInclusiveIf(0.5)(income_per_capita, is_registered = 1 and income_per_capita is not null) as income_median_per_capita,
        countIf(is_registered = 1 and income_above_line is not null) as income_line_known_households,
        countIf(is_registered = 1 and income_above_line = 1) as income_above_line_households,
        countIf(is_registered = 1 and income_per_capita_previous_year is not null) as income_change_households,
        avgIf(income_per_capita - income_per_capita_previous_year,
              is_registered = 1 and income_per_capita_previous_year is not null) as income_change_mean_per_capita,
        {% for c in poverty_causes() %}
        countIf(is_registered = 1 and has(poverty_causes, '{{ c }}')) as cause_{{ c }}_households,
        {% endfor %}
        countIf(is_registered = 1 and on_dibao = 1) as dibao_registered_households,
        countIf(is_registered = 1 and on_tekun = 1) as tekun_registered_households,
        sumIf(persons_insured, is_registered = 1) as insured_persons,
        sumIf(compulsory_dropouts, is_registered = 1) as compulsory_dropouts_persons,
        countIf(is_registered = 1 and house_grade in ('C', 'D')) as unsafe_house_households,
        countIf(is_registered = 1 and water_safe = 0) as unsafe_water_households
    from guarantees
    group by region_code, level, reference_date

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

{# Assessment figures of every region at every level for the facts matching date_filter. #}
{% macro assessment_select(date_filter) -%}
with facts as (

    {{ facts_at_levels(date_filter) }}

),

cadre_loads as (

    -- households per active cadre, over every region
    select reference_date, cadre_id, count() as cadre_households
    from {{ ref('int_household_facts_latest') }}
    array join active_cadres as cadre_id
    where {{ date_filter }}
    group by reference_date, cadre_id

),

cadres_by_region as (

    select
        f.region_key as region_code,
        f.level as level,
        f.reference_date as reference_date,
        groupUniqArray((l.cadre_id, l.cadre_households)) as cadres
    from (select region_key, level, reference_date, active_cadres from facts) as f
    array join f.active_cadres as cadre_id
    inner join cadre_loads as l on l.cadre_id = cadre_id and l.reference_date = f.reference_date
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
            select distinct reference_date from {{ ref('int_household_facts_latest') }} where {{ date_filter }}
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

aggregated as (

    select
        region_key as region_code,
        level,
        reference_date,
        sumIf(living_members, is_remaining_poor = 1) as remaining_poor_persons,
        -- findings of each household's latest check, classified by its status at the check
        countIf(check_finding is not null and status_at_check in ('poor', 'returned', 'exited')) as checked_registered_households,
        countIf(check_finding = 'wrongly_identified' and status_at_check in ('poor', 'returned', 'exited')) as wrongly_identified_households,
        countIf(check_finding is not null and status_at_check = 'exited') as checked_exited_households,
        sumIf(living_members, check_finding is not null and status_at_check = 'exited') as checked_exited_persons,
        countIf(check_finding = 'wrongly_exited' and status_at_check = 'exited') as wrongly_exited_households,
        sumIf(living_members, check_finding = 'wrongly_exited' and status_at_check = 'exited') as wrongly_exited_persons,
        countIf(check_finding is not null and status_at_check = 'non_registered') as checked_non_registered_households,
        sumIf(living_members, check_finding is not null and status_at_check = 'non_registered') as checked_non_registered_persons,
        countIf(check_finding = 'missed' and status_at_check = 'non_registered') as missed_households,
        sumIf(living_members, check_finding = 'missed' and status_at_check = 'non_registered') as missed_persons,
        countIf(satisfied is not null) as surveyed_households,
        countIf(satisfied = 1) as satisfied_households,
        countIf(is_registered = 1) as support_scope_households,
        countIf(is_registered = 1 and has_cadre = 1) as households_with_cadre,
        countIf(is_registered = 1 and visits_compliant is not null) as visit_scope_households,
        countIf(is_registered = 1 and visits_compliant = 1) as visit_compliant_households,
        max(visit_months_required) as visit_months_in_period,
        countIf(returned_in_period = 1) as returned_in_period_households,
        countIf(status in ('exited', 'returned')) as ever_exited_households
    from facts
    group by region_code, level, reference_date

),

joined as (

    select
        a.region_code as region_code,
        a.level as level,
        a.reference_date as reference_date,
        a.* except (region_code, level, reference_date),
        coalesce(nullIf(z_own.zone, ''), nullIf(z_county.zone, ''), 'central') as zone,
        p.agricultural_population as agricultural_population,
        c.cadres as cadres,
        al.alerts_raised as alerts_raised,
        al.alerts_resolved as alerts_resolved,
        al.alerts_open as alerts_open,
        al.alert_response_median_days as alert_response_median_days
    from aggregated as a
    left join zones as z_own on z_own.region_code = a.region_code
    left join zones as z_county on z_county.region_code = substring(a.region_code, 1, 6)
    left join population as p
        on p.region_code = a.region_code and p.level = a.level and p.year = toYear(a.reference_date)
    left join cadres_by_region as c
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
        toUInt32(length(coalesce(cadres, []))) as cadres_active,
        toUInt32(arrayCount(x -> x.2 > coalesce(t.cadre_households_max, 5), coalesce(cadres, []))) as cadres_over_limit,
        if(length(coalesce(cadres, [])) = 0, NULL, toFloat64(households_with_cadre) / length(cadres)) as households_per_cadre
    from joined as j
    left join {{ ref('indicator_thresholds') }} as t on t.level = j.level and t.zone = j.zone
    settings join_use_nulls = 1

)

select
    region_code,
    level,
    reference_date,
    {{ cutoff_literal() }} as cutoff,
    {{ build_key('reference_date') }} as build_key,
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
    if(level != 'county', NULL,
       toUInt8(coalesce(comprehensive_incidence_rate < comprehensive_incidence_max, 0)
               and coalesce(wrong_exit_rate < wrong_exit_rate_max, 1)
               and coalesce(missed_rate < missed_rate_max, 1)
               and coalesce(satisfaction_rate >= satisfaction_rate_min, 1))) as county_exit_ready,
    if(level != 'village' or poverty_incidence_rate is null or village_incidence_max is null, NULL,
       toUInt8(poverty_incidence_rate < village_incidence_max)) as village_exit_ready,
    now64(3, 'UTC') as built_at
from rated
{%- endmacro %}
