{{ config(materialized='view') }}

-- The household facts with the incremental rows collapsed: the latest build of each
-- (reference_date, household_id). Marts read this, never the appended table.

select * from {{ ref('int_household_facts') }} final
