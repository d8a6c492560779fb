with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'health_insurance'

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
        JSONExtract(payload, 'year', 'Nullable(Int32)') as year,
        JSONExtract(payload, 'schemes', 'Array(String)') as schemes,
        JSONExtract(payload, 'total_cost', 'Nullable(Float64)') as total_cost,
        JSONExtract(payload, 'out_of_pocket', 'Nullable(Float64)') as out_of_pocket
    from source

)

select * from renamed
