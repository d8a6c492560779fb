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
                event_type in {{ transition_kinds(prefix='poverty_office.') }})) as timeline,
        count() as events
    from {{ source('warehouse', 'events_latest') }}
    where {{ changed_households_filter() }}
    group by household_id

)

select
    household_id,
    arrayFold((acc, e) -> {{ status_after('e.4', 'acc', prefix='poverty_office.') }},
        timeline, 'non_registered') as rebuilt_status,
    events,
    {{ source_watermark_sql() }} as source_watermark
from transitions
