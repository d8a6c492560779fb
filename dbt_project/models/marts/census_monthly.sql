{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='build_key',
          order_by='(level, region_code, reference_date)', pre_hook="{{ partition_by_build_key() }}") }}
-- depends_on: {{ ref('int_village_figures') }}

-- The census figures at the last day of each month of the series, for every region and level.
-- An incremental build recomputes only the month ends whose household facts changed since
-- (changed_dates_filter, via the village figures); the others keep their rows (build_key is per month end and T).

{{ census_select('reference_date in ' ~ series_dates_array() ~ ' and ' ~ changed_dates_filter()) }}
