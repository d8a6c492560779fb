-- Open alert episodes by rule and village, live (a view over the alerts the sink lands): an
-- episode is open while no `resolved` message of its alert_id has landed. Counts only, no household.
{{ config(materialized='view') }}

with episodes as (

    select
        alert_id,
        any(rule) as rule,
        any(region_code) as region_code,
        min(if(state = 'raised', occurred_at, raised_occurred_at)) as raised_at,
        max(state = 'resolved') as resolved,
        max(ingested_at) as landed_at
    from {{ source('warehouse', 'alerts') }}
    group by alert_id

)

select
    rule,
    region_code,
    count() as open_episodes,
    min(raised_at) as oldest_raised_at,
    max(landed_at) as latest_landed_at
from episodes
where not resolved
group by rule, region_code
