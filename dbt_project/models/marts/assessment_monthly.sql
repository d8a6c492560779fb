{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='build_key',
          order_by='(level, region_code, reference_date)', pre_hook="{{ partition_by_build_key() }}",
          on_schema_change='append_new_columns') }}
-- depends_on: {{ ref('int_village_figures') }}

-- The assessment figures at the last day of each month of the series.
-- An incremental build recomputes only the month ends whose inputs changed since the last one:
-- household facts (changed_dates_filter), alert episodes landed since (from the earliest start
-- they carry on: a new revision can only change dates from its episode's start) and reference population or zones that differ from the stored figures (every date).

{% set last_built -%}
    (select coalesce(max(built_at), toDateTime64(0, 3, 'UTC')) from {{ this }}
     where reference_date in {{ series_dates_array() }} and build_key = {{ build_key('reference_date', with_period=true) }})
{%- endset %}

{% set other_inputs_changed -%}
    reference_date >= (
        select coalesce(minOrNull(toDate(start_occurred_at)), toDate('2299-12-31'))
        from {{ source('warehouse', 'alerts') }} where ingested_at > {{ last_built }}
    )
    or (
        select count() from (
            select m.agricultural_population as stored_population, m.zone as stored_zone,
                   coalesce(p.agricultural_population, 0) as population,
                   coalesce(nullIf(z_own.zone, ''), nullIf(z_county.zone, ''), 'central') as zone
            from (
                select region_code, level, reference_date, agricultural_population, zone from {{ this }}
                where reference_date in {{ series_dates_array() }} and build_key = {{ build_key('reference_date', with_period=true) }}
            ) as m
            left join (
                select lv.level as level, substring(p.region_code, 1, lv.code_length) as region_code,
                       toUInt16(p.year) as year, sum(p.agricultural_population) as agricultural_population
                from {{ source('warehouse', 'reference_population') }} as p
                cross join {{ ref('region_levels') }} as lv
                group by level, region_code, year
            ) as p on p.region_code = m.region_code and p.level = m.level and p.year = toYear(m.reference_date)
            left join (
                select region_code, any(zone) as zone from {{ source('warehouse', 'reference_regions') }} group by region_code
            ) as z_own on z_own.region_code = m.region_code
            left join (
                select region_code, any(zone) as zone from {{ source('warehouse', 'reference_regions') }} group by region_code
            ) as z_county on z_county.region_code = substring(m.region_code, 1, 6)
        )
        where stored_population != population or stored_zone != zone
    ) > 0
{%- endset %}

{{ assessment_select('reference_date in ' ~ series_dates_array() ~ ' and '
                    ~ changed_dates_filter(other_inputs_changed, with_period=true)) }}
