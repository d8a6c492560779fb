-- Open alert episodes by rule and village, live (a view over the episodes the sink lands): an
-- episode's latest revision says whether it is open (raised), resolved or retracted (domain.md,
-- alert episodes). Counts only, no household.
{{ config(materialized='view') }}

with episodes as (

    select
        alert_id,
        rule,
        region_code,
        state,
        start_occurred_at,
        ingested_at
    from {{ source('warehouse', 'alerts') }} final

),

open_episodes as (

    select * from episodes
    where state = 'raised'

)

select
    rule,
    region_code,
    count() as open_episodes,
    min(start_occurred_at) as oldest_raised_at,
    max(ingested_at) as latest_landed_at
from open_episodes
group by rule, region_code
