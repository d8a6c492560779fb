-- Households whose live status (the latest status document from the streams) differs from the
-- status dbt re-derives from the event store: each one is a bug in the fold or in this project.

with live as (

    select
        household_id,
        argMax(status, (updated_at, version)) as live_status,
        argMax(region_code, (updated_at, version)) as live_region_code,
        max(version) as live_version,
        max(updated_at) as live_updated_at
    from {{ source('warehouse', 'household_status_history') }}
    group by household_id

)

select
    live.household_id as household_id,
    live.live_region_code as region_code,
    live.live_status as live_status,
    coalesce(r.rebuilt_status, 'non_registered') as rebuilt_status,
    live.live_version as live_version,
    live.live_updated_at as live_updated_at
from live
left join {{ ref('int_household_status_rebuilt') }} as r on r.household_id = live.household_id
where live.live_status != coalesce(r.rebuilt_status, 'non_registered')
