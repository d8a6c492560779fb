{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='build_key',
          order_by='(reference_date, cadre_id)', pre_hook="{{ partition_by_build_key() }}") }}

-- Each active cadre's load (households held over every region) at D and cut-off T, for
-- `fupin indicators --cadres`. Accumulates like the other marts: each build replaces its own
-- (D, T) rows and keeps other dates' rows. int_cadre_loads holds only the dates of the latest
-- build's context, so reading it for an earlier date found no cadre.

with limits as (

    select min(cadre_households_max) as cadre_households_max
    from {{ ref('indicator_thresholds') }}

)

select
    l.reference_date as reference_date,
    {{ cutoff_literal() }} as cutoff,
    {{ build_key('l.reference_date') }} as build_key,
    l.cadre_id as cadre_id,
    l.cadre_households as cadre_households,
    l.villages as villages,
    toUInt32(length(l.villages)) as village_count,
    toUInt32(coalesce(limits.cadre_households_max, 5)) as cadre_households_max,
    toUInt8(l.cadre_households > coalesce(limits.cadre_households_max, 5)) as over_limit,
    now64(3, 'UTC') as built_at
from {{ ref('int_cadre_loads') }} as l
cross join limits
where l.is_census_date = 1
