-- Feed freshness per department, live (a view over the event store as landed): the latest valid
-- and transaction time and landing time. Maxima need no deduplication, so `events` is read as is.
{{ config(materialized='view') }}

select
    department,
    max(occurred_at) as latest_occurred_at,
    max(recorded_at) as latest_recorded_at,
    max(ingested_at) as latest_ingested_at
from {{ source('warehouse', 'events') }}
group by department
