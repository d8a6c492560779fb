with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'assessment'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'finding', 'Nullable(String)') as finding,
        JSONExtract(payload, 'batch', 'Nullable(String)') as batch,
        JSONExtract(payload, 'satisfied', 'Nullable(Bool)') as satisfied
    from source

)

select * from renamed
