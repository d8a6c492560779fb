with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'water'

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
        JSONExtract(payload, 'safe', 'Nullable(Bool)') as safe,
        JSONExtract(payload, 'issues', 'Array(String)') as issues
    from source

)

select * from renamed
