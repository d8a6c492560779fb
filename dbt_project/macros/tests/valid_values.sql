{# A model's enumerations and required columns: each `not_null` column has a value, each column of
   `accepted` one of its values (null passes, as in accepted_values). All the checks in one scan
   and one test node (each node costs a build about as much as its query); a failing row says
   which check it fails. #}
{% test valid_values(model, not_null=[], accepted={}) %}
{%- set checks = [] -%}
{%- for col in not_null -%}
  {%- do checks.append((col ~ ' is null', col ~ ' is null')) -%}
{%- endfor -%}
{%- for col, values in accepted.items() -%}
  {%- do checks.append((col ~ " not in ('" ~ (values | join("', '")) ~ "')", col ~ ' not accepted')) -%}
{%- endfor %}
select
    multiIf({% for cond, failure in checks %}{{ cond }}, '{{ failure }}', {% endfor %}'') as failure
from {{ model }}
where {% for cond, failure in checks %}({{ cond }}){{ " or " if not loop.last }}{% endfor %}
{% endtest %}
