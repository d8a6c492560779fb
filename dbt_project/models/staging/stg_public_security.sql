with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'public_security'

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
        JSONExtract(payload, 'birth_date', 'Nullable(String)') as birth_date,
        JSONExtract(payload, 'sex', 'Nullable(String)') as sex,
        JSONExtract(payload, 'relation', 'Nullable(String)') as relation,
        JSONExtract(payload, 'reason', 'Nullable(String)') as reason
    from source

)

select * from renamed
