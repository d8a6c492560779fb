{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='build_key',
          order_by='(level, region_code, reference_date)', pre_hook="{{ partition_by_build_key() }}",
          on_schema_change='append_new_columns') }}

-- Performance-assessment figures (成效考核) at D for every region at every level.

{{ assessment_select('is_census_date = 1') }}
