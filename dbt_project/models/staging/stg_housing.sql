with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'housing'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'grade', 'Nullable(String)') as grade,
        JSONExtract(payload, 'grade_after', 'Nullable(String)') as grade_after,
        JSONExtract(payload, 'new_region_code', 'Nullable(String)') as new_region_code
    from source

)

select * from renamed
