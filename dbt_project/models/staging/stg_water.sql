with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'water'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'safe', 'Nullable(Bool)') as safe,
        JSONExtract(payload, 'issues', 'Array(String)') as issues
    from source

)

select * from renamed
