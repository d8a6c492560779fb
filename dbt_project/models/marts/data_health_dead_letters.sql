-- Dead letters by source topic and reason, live (counts only, never a message). FINAL collapses a
-- message several components rejected into one (its identity: topic, partition, offset, bytes).
{{ config(materialized='view') }}

select
    source_topic,
    reason,
    count() as dead_letters,
    max(received_at) as latest_received_at
from {{ source('warehouse', 'dead_letters') }} final
group by source_topic, reason
