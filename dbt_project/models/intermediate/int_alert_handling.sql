-- One row per alert raised by the streams: when it was raised and resolved, and the first
-- support measure or visit recorded for the household after the raise (alert handling).

with raised as (

    select
        alert_id,
        any(household_id) as household_id,
        any(region_code) as region_code,
        any(rule) as rule,
        min(occurred_at) as raised_at
    from {{ source('warehouse', 'alerts') }}
    where state = 'raised' and {{ within_cutoff('processed_at') }}
    group by alert_id

),

resolved as (

    select alert_id, min(occurred_at) as resolved_at
    from {{ source('warehouse', 'alerts') }}
    where state = 'resolved' and {{ within_cutoff('processed_at') }}
    group by alert_id

),

responses as (

    select household_id, occurred_at
    from {{ ref('stg_poverty_office') }}
    where event_name in ('support_measure_recorded', 'visit_recorded')
      and {{ within_cutoff('recorded_at') }}
      and household_id in (select household_id from raised)

),

first_response as (

    select r.alert_id as alert_id, minIf(s.occurred_at, s.occurred_at >= r.raised_at) as first_response_at,
           countIf(s.occurred_at >= r.raised_at) as responses
    from raised as r
    inner join responses as s on s.household_id = r.household_id
    group by r.alert_id

)

select
    r.alert_id as alert_id,
    r.household_id as household_id,
    r.region_code as region_code,
    r.rule as rule,
    r.raised_at as raised_at,
    d.resolved_at as resolved_at,
    if(f.responses > 0, f.first_response_at, NULL) as first_response_at,
    if(f.responses > 0, dateDiff('day', toDate(r.raised_at), toDate(f.first_response_at)), NULL) as response_days
from raised as r
left join resolved as d on d.alert_id = r.alert_id
left join first_response as f on f.alert_id = r.alert_id
settings join_use_nulls = 1
