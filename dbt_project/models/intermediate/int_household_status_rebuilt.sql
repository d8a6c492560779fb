{{ config(materialized='incremental', incremental_strategy='delete_insert', unique_key='household_id', order_by='household_id',
          on_schema_change='sync_all_columns') }}

-- The base status of every household in the event store, re-derived from all its events by
-- valid-time replay, to compare with the live status the streams produced. Incremental: a build
-- re-derives the households with events landed since its last build (delete+insert by household).

with transitions as (

    select
        household_id,
        arraySort(e -> (e.1, e.2, e.3),
            groupArrayIf((occurred_at, recorded_at, event_id, event_type),
                event_type in ('poverty_office.household_registered', 'poverty_office.household_exited',
                               'poverty_office.household_returned'))) as timeline,
        count() as events
    from {{ source('warehouse', 'events_latest') }}
    where {{ changed_households_filter() }}
    group by household_id

)

select
    household_id,
    arrayFold((acc, e) -> multiIf(
        e.4 = 'poverty_office.household_registered' and acc = 'non_registered', 'poor',
        e.4 = 'poverty_office.household_exited' and acc in ('poor', 'returned'), 'exited',
        e.4 = 'poverty_office.household_returned' and acc = 'exited', 'returned',
        acc), timeline, 'non_registered') as rebuilt_status,
    events,
    {{ source_watermark_sql() }} as source_watermark
from transitions
