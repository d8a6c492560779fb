-- The base status of every household in the event store, re-derived from all its events by
-- valid-time replay, to compare with the live status the streams produced.

with transitions as (

    select
        household_id,
        arraySort(e -> (e.1, e.2, e.3),
            groupArrayIf((occurred_at, recorded_at, event_id, event_type),
                event_type in ('poverty_office.household_registered', 'poverty_office.household_exited',
                               'poverty_office.household_returned'))) as timeline,
        count() as events
    from {{ source('warehouse', 'events_latest') }}
    group by household_id

)

select
    household_id,
    arrayFold((acc, e) -> multiIf(
        e.4 = 'poverty_office.household_registered' and acc = 'non_registered', 'poor',
        e.4 = 'poverty_office.household_exited' and acc in ('poor', 'returned'), 'exited',
        e.4 = 'poverty_office.household_returned' and acc = 'exited', 'returned',
        acc), timeline, 'non_registered') as rebuilt_status,
    events
from transitions
