with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'human_resources'

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
        JSONExtract(payload, 'monthly_wage', 'Nullable(Float64)') as monthly_wage,
        JSONExtract(payload, 'place', 'Nullable(String)') as place
    from source

)

select * from renamed
