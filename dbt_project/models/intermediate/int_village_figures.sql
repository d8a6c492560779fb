{{
  config(
    materialized='incremental',
    incremental_strategy='insert_overwrite',
    partition_by='reference_date',
    on_schema_change='sync_all_columns',
    order_by='(reference_date, region_code)',
    pre_hook="{{ reset_facts_if_context_changed() }}"
  )
}}
-- depends_on: {{ ref('int_household_facts') }}

-- One row per village and reference date: the additive parts of every mart figure (counts and
-- sums, the parts of means and of the income median). The marts roll these up to every level
-- (village_rollup), so the household facts are aggregated once, not once per level and mart.
-- An incremental build recomputes the dates whose household facts were rebuilt since its last
-- build (rebuilt_dates_filter) and replaces their partitions; the other dates keep their rows.

with facts as (

    select
        *,
        multiIf(
            guarantee_income = 'not_met' or guarantee_education = 'not_met' or guarantee_medical = 'not_met'
              or guarantee_housing = 'not_met' or guarantee_water = 'not_met', 'not_met',
            guarantee_income = 'met' and guarantee_education = 'met' and guarantee_medical = 'met'
              and guarantee_housing = 'met' and guarantee_water = 'met', 'met',
            'unverified') as guarantee_all
    from {{ ref('int_household_facts_latest') }}
    where {{ rebuilt_dates_filter() }}

),

aggregated as (

    select
        region_code,
        reference_date,
        is_census_date,
        {%- for name, expr in village_parts() %}
        {{ expr }} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from facts
    group by region_code, reference_date, is_census_date

)

select
    *,
    '{{ build_context() }}' as context,
    now64(3, 'UTC') as built_at
from aggregated
