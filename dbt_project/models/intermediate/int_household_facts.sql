{{
  config(
    materialized='incremental',
    incremental_strategy='append',
    engine='ReplacingMergeTree(built_at)',
    order_by='(reference_date, household_id)',
    pre_hook="{{ reset_facts_if_context_changed() }}"
  )
}}

-- One row per household and reference date (D and the series month ends): the household's
-- facts valid at that date (domain.md, "How status and guarantees follow from events").
-- Readers use FINAL: an incremental build appends the changed households' new rows.

{% set ev_type -%}
Tuple(occ DateTime64(3, \'UTC\'), rec DateTime64(3, \'UTC\'), id String, kind String, person String, region String, s String, n Float64, y Int32, b UInt8, arr Array(String))
{%- endset %}
{% set membership = "('member_registered', 'person_joined', 'person_left')" %}
{% set transitions = "('household_registered', 'household_exited', 'household_returned')" %}

with events as (

    -- is_incremental() is this model's: the ephemeral input cannot see it
    select * from {{ ref('int_household_events') }}
    where {{ changed_households_filter() }}

),

timelines as (

    select
        household_id,
        arraySort(e -> (e.occ, e.rec, e.id), groupArray(
            CAST((occurred_at, recorded_at, event_id, kind, person, region_code, s, n, y, b, arr), '{{ ev_type }}')
        )) as timeline
    from events
    group by household_id

),

at_date as (

    select
        household_id,
        reference_date,
        arrayFilter(e -> toDate(e.occ) <= reference_date, timeline) as evs
    from timelines
    array join {{ reference_dates_array() }} as reference_date
    where length(evs) > 0

),

folded as (

    select
        household_id,
        reference_date,
        evs,
        -- base status by valid-time replay; invalid transitions counted; a return applied in the period
        arrayFold((acc, e) -> multiIf(
            e.kind = 'household_registered',
                if(acc.1 = 'non_registered', ('poor', acc.2, acc.3), (acc.1, toUInt32(acc.2 + 1), acc.3)),
            e.kind = 'household_exited',
                if(acc.1 in ('poor', 'returned'), ('exited', acc.2, acc.3), (acc.1, toUInt32(acc.2 + 1), acc.3)),
            e.kind = 'household_returned',
                if(acc.1 = 'exited',
                   ('returned', acc.2, if(toDate(e.occ) >= {{ period_start() }}, toUInt8(1), acc.3)),
                   (acc.1, toUInt32(acc.2 + 1), acc.3)),
            acc), evs, CAST(('non_registered', 0, 0), 'Tuple(String, UInt32, UInt8)')) as fold,
        -- region after relocations: a relocation moves the household to its new village
        arrayLast(e -> 1, evs) as last_event,
        arrayLast(e -> e.kind = 'household_relocated' or e.region != '', evs) as last_region_event,
        -- members living at the date
        arrayDistinct(arrayMap(e -> e.person, arrayFilter(e -> e.kind in {{ membership }} and e.person != '', evs))) as persons,
        arrayFilter(p -> arrayLast(e -> e.kind in {{ membership }} and e.person = p, evs).kind != 'person_left', persons) as living,
        -- medical insurance for the year of the date, per living member: index of the latest fact
        arrayMap(p -> arrayLastIndex(e -> e.kind = 'insurance_enrolled' and e.person = p and e.y = toYear(reference_date), evs), living) as enrolled_idx,
        arrayMap(p -> arrayLastIndex(e -> e.kind = 'insurance_lapsed' and e.person = p and e.y = toYear(reference_date), evs), living) as lapsed_idx,
        -- compulsory-stage dropouts with no later return, per living member
        arrayMap(p -> arrayLastIndex(e -> e.kind = 'student_dropped_out' and e.person = p and e.s in ('primary', 'junior_middle'), evs), living) as dropout_idx,
        arrayMap(p -> arrayLastIndex(e -> e.kind = 'student_returned' and e.person = p, evs), living) as return_idx,
        arrayLast(e -> e.kind = 'income_assessed', evs) as income,
        arrayLast(e -> e.kind in ('house_appraised', 'house_renovated', 'household_relocated'), evs) as housing,
        arrayLast(e -> e.kind = 'water_assessed', evs) as water,
        arrayLast(e -> e.kind in ('monitoring_enrolled', 'monitoring_risk_eliminated'), evs) as monitoring,
        arrayLast(e -> e.kind = 'monitoring_enrolled', evs) as monitoring_enrolment,
        arrayLast(e -> e.kind in ('dibao_enrolled', 'dibao_terminated'), evs) as dibao,
        arrayExists(e -> e.kind = 'tekun_enrolled', evs) as on_tekun,
        arrayLast(e -> e.kind = 'household_registered', evs) as registration,
        arrayLast(e -> e.kind = 'household_checked', evs) as check_event,
        arrayLast(e -> e.kind = 'satisfaction_surveyed', evs) as survey,
        arrayDistinct(arrayMap(e -> e.s, arrayFilter(e -> e.kind in ('cadre_assigned', 'cadre_unassigned'), evs))) as cadres_seen,
        arrayFilter(c -> arrayLast(e -> e.kind in ('cadre_assigned', 'cadre_unassigned') and e.s = c, evs).kind = 'cadre_assigned', cadres_seen) as active_cadres,
        arrayDistinct(arrayMap(e -> toStartOfMonth(e.occ), arrayFilter(e -> e.kind = 'visit_recorded' and toDate(e.occ) >= {{ period_start() }}, evs))) as months_visited,
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
        if(last_region_event.kind = 'household_relocated', last_region_event.s, last_region_event.region) as region_code,
        fold.1 as status,
        toUInt8(fold.1 in ('poor', 'returned', 'exited')) as is_registered,
        toUInt8(fold.1 in ('poor', 'returned')) as is_remaining_poor,
        fold.2 as invalid_transitions,
        fold.3 as returned_in_period,
        toUInt32(length(living)) as living_members,
        toUInt32(arrayCount((a, b) -> a > b, enrolled_idx, lapsed_idx)) as persons_insured,
        toUInt32(arrayCount((a, b) -> b > a, enrolled_idx, lapsed_idx)) as persons_lapsed,
        toUInt32(arrayCount((a, b) -> a > b, dropout_idx, return_idx)) as compulsory_dropouts,
        if(income.kind = '', NULL, income.n) as income_per_capita,
        if(income.kind = '', NULL, income.y) as income_year,
        arrayLast(e -> e.kind = 'income_assessed' and e.y = income.y - 1, evs).n as income_prev_raw,
        arrayExists(e -> e.kind = 'income_assessed' and e.y = income.y - 1, evs) as has_income_prev,
        if(housing.kind = '', NULL, if(housing.kind = 'household_relocated', 'A', housing.s)) as house_grade,
        if(water.kind = '', NULL, water.b) as water_safe,
        if(monitoring_enrolment.kind = '', NULL, monitoring_enrolment.s) as monitoring_category,
        multiIf(monitoring_enrolment.kind = '', NULL,
                monitoring.kind = 'monitoring_enrolled', 'open', 'eliminated') as monitoring_risk_state,
        toUInt8(dibao.kind = 'dibao_enrolled') as on_dibao,
        toUInt8(on_tekun) as on_tekun,
        registration.arr as poverty_causes,
        active_cadres,
        toUInt8(length(active_cadres) > 0) as has_cadre,
        toUInt32(length(months_required)) as visit_months_required,
        if(length(months_required) = 0, NULL, toUInt8(arrayAll(m -> has(months_visited, m), months_required))) as visits_compliant,
        if(check_event.kind = '', NULL, check_event.s) as check_finding,
        if(check_event.kind = '', NULL,
           arrayFold((acc, e) -> multiIf(
                e.kind = 'household_registered' and acc = 'non_registered', 'poor',
                e.kind = 'household_exited' and acc in ('poor', 'returned'), 'exited',
                e.kind = 'household_returned' and acc = 'exited', 'returned',
                acc),
              arrayFilter(e -> e.kind in {{ transitions }} and e.occ <= check_event.occ, evs),
              'non_registered')) as status_at_check,
        if(survey.kind = '', NULL, survey.b) as satisfied
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
    (select max(ingested_at) from {{ source('warehouse', 'events_latest') }}) as source_watermark,
    now64(3, 'UTC') as built_at
from with_lines
