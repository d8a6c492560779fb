with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'assessment'

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
        JSONExtract(payload, 'finding', 'Nullable(String)') as finding,
        JSONExtract(payload, 'batch', 'Nullable(String)') as batch,
        JSONExtract(payload, 'satisfied', 'Nullable(Bool)') as satisfied
    from source

)

select * from renamed
