with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'civil_affairs'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'monthly_amount', 'Nullable(Float64)') as monthly_amount,
        JSONExtract(payload, 'persons_covered', 'Nullable(Int32)') as persons_covered,
        JSONExtract(payload, 'reason', 'Nullable(String)') as termination_reason,
        JSONExtract(payload, 'mode', 'Nullable(String)') as tekun_mode,
        JSONExtract(payload, 'amount', 'Nullable(Float64)') as amount,
        JSONExtract(payload, 'kind', 'Nullable(String)') as subsidy_kind
    from source

)

select * from renamed
