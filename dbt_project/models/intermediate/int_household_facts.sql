{{
  config(
    materialized='incremental',
    incremental_strategy='append',
    engine='ReplacingMergeTree(built_at)',
    order_by='(reference_date, household_id)',
    pre_hook="{{ reset_facts_if_context_changed() }}",
    post_hook="{{ merge_parts_after_full_build() }}"
  )
}}

-- One row per household and reference date (D and the series month ends): the household's
-- facts valid at that date (domain.md, "How status and guarantees follow from events").
-- Readers use FINAL: an incremental build appends the changed households' new rows.

{#- kind as an Enum8: the many per-kind lambdas compare small integers, not strings -#}
{% set kinds = ['household_registered', 'member_registered', 'income_assessed', 'household_exited', 'household_returned', 'monitoring_enrolled', 'monitoring_risk_eliminated', 'cadre_assigned', 'cadre_unassigned', 'visit_recorded', 'support_measure_recorded', 'household_checked', 'satisfaction_surveyed', 'dibao_enrolled', 'dibao_terminated', 'tekun_enrolled', 'insurance_enrolled', 'insurance_lapsed', 'student_dropped_out', 'student_returned', 'house_appraised', 'house_renovated', 'household_relocated', 'water_assessed', 'person_joined', 'person_left', 'other'] %}
{% set ev_type -%}
Tuple(occ DateTime64(3, \'UTC\'), d Date, rec DateTime64(3, \'UTC\'), kind Enum8(\'none\' = 0, \'household_registered\' = 1, \'member_registered\' = 2, \'income_assessed\' = 3, \'household_exited\' = 4, \'household_returned\' = 5, \'monitoring_enrolled\' = 6, \'monitoring_risk_eliminated\' = 7, \'cadre_assigned\' = 8, \'cadre_unassigned\' = 9, \'visit_recorded\' = 10, \'support_measure_recorded\' = 11, \'household_checked\' = 12, \'satisfaction_surveyed\' = 13, \'dibao_enrolled\' = 14, \'dibao_terminated\' = 15, \'tekun_enrolled\' = 16, \'insurance_enrolled\' = 17, \'insurance_lapsed\' = 18, \'student_dropped_out\' = 19, \'student_returned\' = 20, \'house_appraised\' = 21, \'house_renovated\' = 22, \'household_relocated\' = 23, \'water_assessed\' = 24, \'person_joined\' = 25, \'person_left\' = 26, \'other\' = 27), person String, region String, s String, n Float64, y Int32, b UInt8, arr Array(String))
{%- endset %}
{% set membership = "('member_registered', 'person_joined', 'person_left')" %}
{% set transitions = transition_kinds() %}

with events as (

    -- is_incremental() is this model's: the ephemeral input cannot see it
    select * from {{ ref('int_household_events') }}
    where {{ changed_households_filter() }}

),

changed_from as (

    -- facts at a date use only events valid by it: a household's new events change its facts
    -- from the earliest of their dates on, so an incremental build rewrites only those dates
    {{ changed_from_sql() }}

),

timelines as (

    -- each household's events in valid-time order (occurred_at, recorded_at, event_id; kind and
    -- person order a registration's member rows), the event id left out of the tuples that every
    -- per-date filter below copies; and the same split by concern once, so the per-date work
    -- scans only small arrays
    select
        t.household_id as household_id,
        timeline,
        {{ 'c.changed_from' if is_incremental() else "toDate('1970-01-01')" }} as changed_from,
        arrayFilter(e -> e.kind in {{ transitions }}, timeline) as tl_status,
        arrayFilter(e -> e.kind in {{ membership }}, timeline) as tl_member,
        arrayFilter(e -> e.kind in ('insurance_enrolled', 'insurance_lapsed'), timeline) as tl_insurance,
        arrayFilter(e -> e.kind in ('student_dropped_out', 'student_returned'), timeline) as tl_school,
        arrayFilter(e -> e.kind = 'income_assessed', timeline) as tl_income,
        arrayFilter(e -> e.kind in ('house_appraised', 'house_renovated', 'household_relocated'), timeline) as tl_housing,
        arrayFilter(e -> e.kind = 'water_assessed', timeline) as tl_water,
        arrayFilter(e -> e.kind in ('monitoring_enrolled', 'monitoring_risk_eliminated'), timeline) as tl_monitoring,
        arrayFilter(e -> e.kind in ('dibao_enrolled', 'dibao_terminated', 'tekun_enrolled'), timeline) as tl_assistance,
        arrayFilter(e -> e.kind in ('cadre_assigned', 'cadre_unassigned', 'visit_recorded'), timeline) as tl_support,
        arrayFilter(e -> e.kind in ('household_checked', 'satisfaction_surveyed'), timeline) as tl_assessment
    from (
        select
            household_id,
            arraySort((e, id) -> (e.occ, e.rec, id, e.kind, e.person),
                groupArray(CAST((occurred_at, toDate(occurred_at), recorded_at,
                      if(kind in ('{{ kinds | join("', '") }}'), kind, 'other'), person, region_code, s, n, y, b, arr),
                     '{{ ev_type }}')),
                groupArray(event_id)) as timeline
        from events
        group by household_id
    ) as t
    {%- if is_incremental() %}
    inner join changed_from as c on c.household_id = t.household_id
    {%- endif %}

),

at_date as (

    select
        household_id,
        reference_date,
        arrayLast(e -> e.d <= reference_date, timeline) as last_event,
        arrayFilter(e -> e.d <= reference_date, tl_status) as evs_status,
        arrayFilter(e -> e.d <= reference_date, tl_member) as evs_member,
        arrayFilter(e -> e.d <= reference_date and e.y = toYear(reference_date), tl_insurance) as evs_insurance,
        arrayFilter(e -> e.d <= reference_date, tl_school) as evs_school,
        arrayFilter(e -> e.d <= reference_date, tl_income) as evs_income,
        arrayFilter(e -> e.d <= reference_date, tl_support) as evs_support,
        arrayLast(e -> e.d <= reference_date, tl_housing) as housing,
        arrayLast(e -> e.d <= reference_date, tl_water) as water,
        arrayLast(e -> e.d <= reference_date, tl_monitoring) as monitoring,
        arrayLast(e -> e.d <= reference_date and e.kind = 'monitoring_enrolled', tl_monitoring) as monitoring_enrolment,
        arrayLast(e -> e.d <= reference_date and e.kind in ('dibao_enrolled', 'dibao_terminated'), tl_assistance) as dibao,
        arrayExists(e -> e.d <= reference_date and e.kind = 'tekun_enrolled', tl_assistance) as on_tekun,
        arrayLast(e -> e.d <= reference_date and e.kind = 'household_checked', tl_assessment) as check_event,
        arrayLast(e -> e.d <= reference_date and e.kind = 'satisfaction_surveyed', tl_assessment) as survey
    from timelines
    array join {{ reference_dates_array() }} as reference_date
    -- the household exists at the date once its first event is valid
    where timeline[1].d <= reference_date and reference_date >= changed_from

),

folded as (

    select
        household_id,
        reference_date,
        last_event,
        housing, water, monitoring, monitoring_enrolment, dibao, on_tekun, check_event, survey,
        evs_status,
        evs_income,
        -- base status by valid-time replay; invalid transitions counted; a return applied in the period
        arrayFold((acc, e) -> multiIf(
            {{ transition_allowed('e.kind', 'acc.1') }},
                ({{ status_after('e.kind', 'acc.1') }}, acc.2,
                 if(e.kind = 'household_returned' and e.d >= {{ period_start() }}, toUInt8(1), acc.3)),
            e.kind in {{ transitions }},
                (acc.1, toUInt32(acc.2 + 1), acc.3),
            acc), evs_status, CAST(('non_registered', 0, 0), 'Tuple(String, UInt32, UInt8)')) as fold,
        -- members living at the date: the latest membership fact of each person is not a departure
        arrayDistinct(arrayMap(e -> e.person, arrayFilter(e -> e.person != '', evs_member))) as persons,
        arrayFilter(p -> arrayLast(e -> e.person = p, evs_member).kind != 'person_left', persons) as living,
        -- medical insurance for the year of the date, per living member: index of the latest fact
        arrayMap(p -> arrayLastIndex(e -> e.kind = 'insurance_enrolled' and e.person = p, evs_insurance), living) as enrolled_idx,
        arrayMap(p -> arrayLastIndex(e -> e.kind = 'insurance_lapsed' and e.person = p, evs_insurance), living) as lapsed_idx,
        -- compulsory-stage dropouts with no later return, per living member
        arrayMap(p -> arrayLastIndex(e -> e.kind = 'student_dropped_out' and e.person = p and e.s in ('primary', 'junior_middle'), evs_school), living) as dropout_idx,
        arrayMap(p -> arrayLastIndex(e -> e.kind = 'student_returned' and e.person = p, evs_school), living) as return_idx,
        arrayLast(e -> 1, evs_income) as income,
        arrayLast(e -> e.kind = 'household_registered', evs_status) as registration,
        arrayDistinct(arrayMap(e -> e.s, arrayFilter(e -> e.kind != 'visit_recorded', evs_support))) as cadres_seen,
        arrayFilter(c -> arrayLast(e -> e.kind != 'visit_recorded' and e.s = c, evs_support).kind = 'cadre_assigned', cadres_seen) as active_cadres,
        arrayDistinct(arrayMap(e -> toStartOfMonth(e.d), arrayFilter(e -> e.kind = 'visit_recorded' and e.d >= {{ period_start() }}, evs_support))) as months_visited,
        arrayFilter(m -> m >= {{ period_start() }} and toLastDayOfMonth(m) <= reference_date,
            arrayMap(i -> addMonths(toStartOfMonth({{ period_start() }}), i),
                range(toUInt32(greatest(dateDiff('month', {{ period_start() }}, reference_date) + 1, 0))))) as months_required
    from at_date

),

facts as (

    select
        household_id,
        reference_date,
        toUInt8(reference_date = {{ as_of_date() }}) as is_census_date,
        if(last_event.kind = 'household_relocated', last_event.s, last_event.region) as region_code,
        fold.1 as status,
        toUInt8(fold.1 in ('poor', 'returned', 'exited')) as is_registered,
        toUInt8(fold.1 in ('poor', 'returned')) as is_remaining_poor,
        fold.2 as invalid_transitions,
        fold.3 as returned_in_period,
        toUInt32(length(living)) as living_members,
        toUInt32(arrayCount((a, b) -> a > b, enrolled_idx, lapsed_idx)) as persons_insured,
        toUInt32(arrayCount((a, b) -> b > a, enrolled_idx, lapsed_idx)) as persons_lapsed,
        toUInt32(arrayCount((a, b) -> a > b, dropout_idx, return_idx)) as compulsory_dropouts,
        if(income.kind = 'none', NULL, income.n) as income_per_capita,
        if(income.kind = 'none', NULL, income.y) as income_year,
        arrayLast(e -> e.y = income.y - 1, evs_income).n as income_prev_raw,
        arrayExists(e -> e.y = income.y - 1, evs_income) as has_income_prev,
        if(housing.kind = 'none', NULL, if(housing.kind = 'household_relocated', 'A', housing.s)) as house_grade,
        if(water.kind = 'none', NULL, water.b) as water_safe,
        if(monitoring_enrolment.kind = 'none', NULL, monitoring_enrolment.s) as monitoring_category,
        multiIf(monitoring_enrolment.kind = 'none', NULL,
                monitoring.kind = 'monitoring_enrolled', 'open', 'eliminated') as monitoring_risk_state,
        toUInt8(dibao.kind = 'dibao_enrolled') as on_dibao,
        toUInt8(on_tekun) as on_tekun,
        registration.arr as poverty_causes,
        active_cadres,
        toUInt8(length(active_cadres) > 0) as has_cadre,
        toUInt32(length(months_required)) as visit_months_required,
        if(length(months_required) = 0, NULL, toUInt8(arrayAll(m -> has(months_visited, m), months_required))) as visits_compliant,
        if(check_event.kind = 'none', NULL, check_event.s) as check_finding,
        if(check_event.kind = 'none', NULL,
           arrayFold((acc, e) -> multiIf(
                e.kind = 'household_registered' and acc = 'non_registered', 'poor',
                e.kind = 'household_exited' and acc in ('poor', 'returned'), 'exited',
                e.kind = 'household_returned' and acc = 'exited', 'returned',
                acc),
              arrayFilter(e -> e.occ <= check_event.occ, evs_status),
              'non_registered')) as status_at_check,
        if(survey.kind = 'none', NULL, survey.b) as satisfied
    from folded

),

with_lines as (

    select
        facts.*,
        if(facts.has_income_prev, facts.income_prev_raw, NULL) as income_per_capita_previous_year,
        lines.poverty_line as poverty_line,
        lines.monitoring_line as monitoring_line
    from facts
    left join {{ source('warehouse', 'reference_lines') }} as lines
        on lines.province_code = substring(facts.region_code, 1, 2)
        and toInt32(lines.year) = facts.income_year
    settings join_use_nulls = 1

)

select
    household_id,
    reference_date,
    is_census_date,
    region_code,
    status,
    is_registered,
    is_remaining_poor,
    invalid_transitions,
    returned_in_period,
    living_members,
    persons_insured,
    persons_lapsed,
    compulsory_dropouts,
    income_per_capita,
    income_year,
    income_per_capita_previous_year,
    poverty_line,
    monitoring_line,
    if(income_per_capita is null or poverty_line is null, NULL, toUInt8(income_per_capita > poverty_line)) as income_above_line,
    multiIf(income_per_capita is null or poverty_line is null, 'unverified',
            income_per_capita > poverty_line, 'met', 'not_met') as guarantee_income,
    if(compulsory_dropouts > 0, 'not_met', 'met') as guarantee_education,
    multiIf(persons_lapsed > 0, 'not_met', living_members > 0 and persons_insured = living_members, 'met', 'unverified') as guarantee_medical,
    multiIf(house_grade is null, 'unverified', house_grade in ('A', 'B'), 'met', 'not_met') as guarantee_housing,
    multiIf(water_safe is null, 'unverified', water_safe = 1, 'met', 'not_met') as guarantee_water,
    house_grade,
    water_safe,
    monitoring_category,
    monitoring_risk_state,
    on_dibao,
    on_tekun,
    poverty_causes,
    active_cadres,
    has_cadre,
    visit_months_required,
    visits_compliant,
    check_finding,
    status_at_check,
    satisfied,
    '{{ build_context() }}' as context,
    {{ source_watermark_sql() }} as source_watermark,
    now64(3, 'UTC') as built_at
from with_lines
