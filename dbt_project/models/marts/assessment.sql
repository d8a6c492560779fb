{{ config(materialized='incremental', incremental_strategy='delete_insert', unique_key='build_key', order_by='(level, region_code, reference_date)') }}

-- Performance-assessment figures (成效考核) at D for every region at every level.

{{ assessment_select('is_census_date = 1') }}
