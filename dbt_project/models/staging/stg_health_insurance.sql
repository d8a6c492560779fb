with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'health_insurance'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'year', 'Nullable(Int32)') as year,
        JSONExtract(payload, 'schemes', 'Array(String)') as schemes,
        JSONExtract(payload, 'total_cost', 'Nullable(Float64)') as total_cost,
        JSONExtract(payload, 'out_of_pocket', 'Nullable(Float64)') as out_of_pocket
    from source

)

select * from renamed
