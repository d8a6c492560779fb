{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='build_key',
          order_by='(level, region_code, reference_date)', pre_hook="{{ partition_by_build_key() }}") }}

-- Consistency checks (数据一致性) at D per region and level: 两线合一, missed candidates,
-- live versus rebuilt status, invalid transitions, and the totals check against the census.

with aggregated as (

    {{ village_rollup('is_census_date = 1', [
        'households_total', 'dibao_households', 'dibao_households_registered', 'dibao_households_not_registered',
        'registered_households', 'missed_candidate_households', 'invalid_transitions']) }}

),

live as (

    select
        substring(m.region_code, 1, lv.code_length) as region_code,
        lv.level as level,
        count() as live_status_mismatch_households
    from {{ ref('consistency_status_mismatches') }} as m
    cross join {{ ref('region_levels') }} as lv
    group by region_code, level

),

live_total as (

    select
        substring(h.region_code, 1, lv.code_length) as region_code,
        lv.level as level,
        uniqExact(h.household_id) as live_status_households
    from {{ source('warehouse', 'household_status_history') }} as h
    cross join {{ ref('region_levels') }} as lv
    group by region_code, level

),

census as (

    select c.region_code, c.level, c.households_total, c.persons_total, c.registered_households,
           lv.code_length as code_length, lv.parent_level as parent_level
    from {{ ref('census') }} as c
    inner join {{ ref('region_levels') }} as lv on lv.level = c.level
    where c.build_key = {{ build_key(as_of_date()) }}

),

parent_lengths as (

    select level, code_length from {{ ref('region_levels') }}

),

children as (

    -- each census row summed into its parent: the parent's code is the child's code prefix
    select
        c.parent_level as level,
        substring(c.region_code, 1, p.code_length) as region_code,
        sum(c.households_total) as children_households_total,
        sum(c.persons_total) as children_persons_total,
        sum(c.registered_households) as children_registered_households,
        count() as children
    from census as c
    inner join parent_lengths as p on p.level = c.parent_level
    group by level, region_code

)

select
    a.region_code as region_code,
    a.level as level,
    a.reference_date as reference_date,
    {{ cutoff_literal() }} as cutoff,
    {{ build_key('a.reference_date') }} as build_key,
    a.households_total as households_total,
    a.dibao_households as dibao_households,
    a.dibao_households_registered as dibao_households_registered,
    a.dibao_households_not_registered as dibao_households_not_registered,
    {{ rate('a.dibao_households_registered', 'a.dibao_households') }} as dibao_registered_rate,
    a.registered_households as registered_households,
    a.dibao_households_registered as registered_households_on_dibao,
    {{ rate('a.dibao_households_registered', 'a.registered_households') }} as registered_on_dibao_rate,
    a.missed_candidate_households as missed_candidate_households,
    a.invalid_transitions as invalid_transitions,
    coalesce(lt.live_status_households, 0) as live_status_households,
    coalesce(l.live_status_mismatch_households, 0) as live_status_mismatch_households,
    {{ rate('coalesce(l.live_status_mismatch_households, 0)', 'coalesce(lt.live_status_households, 0)') }} as live_status_mismatch_rate,
    ch.children as children,
    ch.children_households_total as children_households_total,
    ch.children_persons_total as children_persons_total,
    ch.children_registered_households as children_registered_households,
    if(ch.children is null, NULL,
       toUInt8(ch.children_households_total = c.households_total
               and ch.children_persons_total = c.persons_total
               and ch.children_registered_households = c.registered_households)) as totals_check_passed,
    now64(3, 'UTC') as built_at
from aggregated as a
left join live as l on l.region_code = a.region_code and l.level = a.level
left join live_total as lt on lt.region_code = a.region_code and lt.level = a.level
left join census as c on c.region_code = a.region_code and c.level = a.level
left join children as ch on ch.region_code = a.region_code and ch.level = a.level
settings join_use_nulls = 1
