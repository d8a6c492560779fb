with source as (

    select * from {{ source('warehouse', 'events_latest') }}
    where department = 'poverty_office'

),

renamed as (

    select
        {{ envelope_columns() }},
        JSONExtract(payload, 'year_identified', 'Nullable(Int32)') as year_identified,
        JSONExtract(payload, 'poverty_causes', 'Array(String)') as poverty_causes,
        JSONExtractRaw(payload, 'members') as members_json,
        JSONExtract(payload, 'year', 'Nullable(Int32)') as year,
        JSONExtract(payload, 'net_income_per_capita', 'Nullable(Float64)') as net_income_per_capita,
        JSONExtract(payload, 'household_size', 'Nullable(Int32)') as household_size,
        JSONExtract(payload, 'causes', 'Array(String)') as return_causes,
        JSONExtract(payload, 'category', 'Nullable(String)') as monitoring_category,
        JSONExtract(payload, 'risk_types', 'Array(String)') as risk_types,
        JSONExtract(payload, 'cadre_id', 'Nullable(String)') as cadre_id,
        JSONExtract(payload, 'unit', 'Nullable(String)') as cadre_unit,
        JSONExtract(payload, 'purpose', 'Nullable(String)') as visit_purpose,
        JSONExtract(payload, 'measure', 'Nullable(String)') as support_measure,
        JSONExtract(payload, 'amount', 'Nullable(Float64)') as amount,
        JSONExtract(payload, 'rule', 'Nullable(String)') as verified_rule,
        JSONExtract(payload, 'outcome', 'Nullable(String)') as verification_outcome,
        JSONExtract(payload, 'reason', 'Nullable(String)') as verification_reason
    from source

)

select * from renamed
