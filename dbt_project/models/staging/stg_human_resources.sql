with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'human_resources'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'monthly_wage', 'Nullable(Float64)') as monthly_wage,
        JSONExtract(payload, 'place', 'Nullable(String)') as place
    from source

)

select * from renamed
