with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'education'

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
        JSONExtract(payload, 'stage', 'Nullable(String)') as stage,
        JSONExtract(payload, 'school_code', 'Nullable(String)') as school_code,
        JSONExtract(payload, 'program', 'Nullable(String)') as aid_program,
        JSONExtract(payload, 'amount', 'Nullable(Float64)') as aid_amount
    from source

)

select * from renamed
