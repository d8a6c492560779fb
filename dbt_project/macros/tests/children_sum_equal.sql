{# Every level's counts equal the sum of its children's (indicators.md, totals), per build. #}
{% test children_sum_equal(model, columns) %}
with rows_with_levels as (

    select m.*, lv.parent_level as parent_level
    from {{ model }} as m
    inner join {{ ref('region_levels') }} as lv on lv.level = m.level

),

children as (

    select
        c.build_key as build_key,
        c.reference_date as reference_date,
        c.parent_level as level,
        substring(c.region_code, 1, p.code_length) as region_code,
        {% for col in columns %}sum(c.{{ col }}) as {{ col }}{{ ", " if not loop.last }}{% endfor %}
    from rows_with_levels as c
    inner join {{ ref('region_levels') }} as p on p.level = c.parent_level
    group by build_key, reference_date, level, region_code

)

select parent.region_code, parent.level, parent.reference_date
from {{ model }} as parent
inner join children
    on children.build_key = parent.build_key and children.reference_date = parent.reference_date
    and children.level = parent.level and children.region_code = parent.region_code
where {% for col in columns %}parent.{{ col }} != children.{{ col }}{{ " or " if not loop.last }}{% endfor %}
{% endtest %}
