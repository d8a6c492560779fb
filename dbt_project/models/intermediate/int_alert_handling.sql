-- One row per alert episode of the streams (domain.md, "Alert episodes"): its latest revision,
-- retracted episodes left out (they count nowhere), with the first support measure or visit
-- recorded for the household at or after its start (alert handling). Dates are the valid times of
-- the starting and ending events (indicators.md, "Episodes").
-- Frozen at a cut-off T: an episode counts when its starting event was recorded by T, and is still
-- open at T when its ending event was recorded after T.

with revisions as (

    -- each episode's latest revision, as FINAL would keep it but correct before merges. The whole
    -- row is taken at once: argMax of a single Nullable column skips NULLs, so an episode that a
    -- late event reopened (its latest revision has no end) would keep the end of an older one.
    select
        household_id,
        alert_id,
        argMax(
            (state, region_code, rule, start_occurred_at, start_recorded_at, end_occurred_at, end_recorded_at),
            revision
        ) as latest_revision
    from {{ source('warehouse', 'alerts') }}
    group by household_id, alert_id

),

latest as (

    select
        household_id,
        alert_id,
        latest_revision.1 as state,
        latest_revision.2 as region_code,
        latest_revision.3 as rule,
        latest_revision.4 as start_occurred_at,
        latest_revision.5 as start_recorded_at,
        latest_revision.6 as end_occurred_at,
        latest_revision.7 as end_recorded_at
    from revisions

),

episodes as (

    select
        alert_id,
        household_id,
        region_code,
        rule,
        start_occurred_at as raised_at,
        if({{ within_cutoff('end_recorded_at') }}, end_occurred_at, NULL) as resolved_at
    from latest
    where state != 'retracted' and {{ within_cutoff('start_recorded_at') }}

),

responses as (

    select household_id, occurred_at
    from {{ ref('stg_poverty_office') }}
    where event_name in ('support_measure_recorded', 'visit_recorded')
      and {{ within_cutoff('recorded_at') }}
      and household_id in (select household_id from episodes)

),

first_response as (

    select r.alert_id as alert_id, minIf(s.occurred_at, s.occurred_at >= r.raised_at) as first_response_at,
           countIf(s.occurred_at >= r.raised_at) as responses
    from episodes as r
    inner join responses as s on s.household_id = r.household_id
    group by r.alert_id

)

select
    r.alert_id as alert_id,
    r.household_id as household_id,
    r.region_code as region_code,
    r.rule as rule,
    r.raised_at as raised_at,
    r.resolved_at as resolved_at,
    if(f.responses > 0, f.first_response_at, NULL) as first_response_at,
    if(f.responses > 0, dateDiff('day', toDate(r.raised_at), toDate(f.first_response_at)), NULL) as response_days
from episodes as r
left join first_response as f on f.alert_id = r.alert_id
settings join_use_nulls = 1
