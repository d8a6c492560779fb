{# Rates are shares: each column null (zero denominator) or within [0, 1]. One scan of the model
   for all its rate columns (one test node, not one per column: each node costs a build time). A
   failing row names its column. #}
{% test rates_between_0_and_1(model, columns) %}
select rate_column, rate
from {{ model }}
array join
    [{% for col in columns %}'{{ col }}'{{ ", " if not loop.last }}{% endfor %}] as rate_column,
    [{% for col in columns %}toNullable(toFloat64({{ col }})){{ ", " if not loop.last }}{% endfor %}] as rate
where rate is not null and (rate < 0 or rate > 1)
{% endtest %}
