{{ config(materialized='incremental', unique_key='build_key', order_by='(level, region_code, reference_date)') }}

-- The census figures at the last day of each month of the series, for every region and level.

{{ census_select('reference_date in ' ~ series_dates_array()) }}
