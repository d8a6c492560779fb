{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='build_key',
          order_by='(level, region_code, reference_date)', pre_hook="{{ partition_by_build_key() }}") }}

-- Census figures at the reference date D (and cut-off T) for every region at every level.
-- Accumulates: each build replaces its own (D, T) rows and keeps other dates' rows.

{{ census_select('is_census_date = 1') }}
