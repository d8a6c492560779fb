with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'education'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'stage', 'Nullable(String)') as stage,
        JSONExtract(payload, 'school_code', 'Nullable(String)') as school_code,
        JSONExtract(payload, 'program', 'Nullable(String)') as aid_program,
        JSONExtract(payload, 'amount', 'Nullable(Float64)') as aid_amount
    from source

)

select * from renamed
