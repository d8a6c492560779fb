{{
  config(
    materialized='incremental',
    incremental_strategy='insert_overwrite',
    partition_by='reference_date',
    on_schema_change='sync_all_columns',
    order_by='(reference_date, cadre_id)',
    pre_hook="{{ reset_facts_if_context_changed() }}"
  )
}}
-- depends_on: {{ ref('int_household_facts') }}

-- One row per active cadre and reference date: the households the cadre holds over every region
-- (its load) and the villages they live in. The assessment marts count a region's cadres from
-- these (a cadre counts once in each region it serves). Incremental like int_village_figures:
-- the dates whose household facts were rebuilt since its last build.

select
    reference_date,
    any(is_census_date) as is_census_date,
    cadre_id,
    count() as cadre_households,
    arraySort(groupUniqArray(region_code)) as villages,
    '{{ build_context() }}' as context,
    now64(3, 'UTC') as built_at
from {{ ref('int_household_facts_latest') }}
array join active_cadres as cadre_id
where {{ rebuilt_dates_filter() }}
group by reference_date, cadre_id
