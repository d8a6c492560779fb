with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'housing'

),

renamed as (

    select
        event_id,
        substring(event_type, position(event_type, '.') + 1) as event_name,
        schema_version,
        household_id,
        person_id,
        region_code,
        occurred_at,
        recorded_at,
        ingested_at,
        JSONExtract(payload, 'grade', 'Nullable(String)') as grade,
        JSONExtract(payload, 'grade_after', 'Nullable(String)') as grade_after,
        JSONExtract(payload, 'new_region_code', 'Nullable(String)') as new_region_code
    from source

)

select * from renamed
