with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'public_security'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'birth_date', 'Nullable(String)') as birth_date,
        JSONExtract(payload, 'sex', 'Nullable(String)') as sex,
        JSONExtract(payload, 'relation', 'Nullable(String)') as relation,
        JSONExtract(payload, 'reason', 'Nullable(String)') as reason
    from source

)

select * from renamed
