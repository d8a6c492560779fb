with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'disabled_persons'

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
        JSONExtract(payload, 'grade', 'Nullable(Int32)') as disability_grade,
        JSONExtract(payload, 'kind', 'Nullable(String)') as disability_kind
    from source

)

select * from renamed
