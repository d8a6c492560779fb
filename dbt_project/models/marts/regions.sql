-- The region tree of the reference data, for dashboards: names, levels, parents (a view: always current).
{{ config(materialized='view') }}

select
    region_code,
    name,
    level,
    parent_code,
    is_poor_county,
    zone
from {{ source('warehouse', 'reference_regions') }}
