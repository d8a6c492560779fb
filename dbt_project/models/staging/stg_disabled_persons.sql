with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'disabled_persons'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'grade', 'Nullable(Int32)') as disability_grade,
        JSONExtract(payload, 'kind', 'Nullable(String)') as disability_kind
    from source

)

select * from renamed
