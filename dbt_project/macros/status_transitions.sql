{#- The base-status transitions of domain.md ("Base status"), the one home of the rule for SQL.
    event kind -> (statuses it may leave, status it leads to). Python's home is
    streams/household.py (TRANSITIONS); the simulator's ground truth is written apart on purpose,
    so that the tests compare two independent readings of the spec. -#}
{% macro status_transitions() %}
  {{ return([
      ('household_registered', ['non_registered'], 'poor'),
      ('household_exited', ['poor', 'returned'], 'exited'),
      ('household_returned', ['exited'], 'returned'),
  ]) }}
{% endmacro %}

{#- The transition kinds as an SQL tuple literal: ('household_registered', ...). -#}
{% macro transition_kinds(prefix='') -%}
  ({% for kind, _, _ in status_transitions() %}'{{ prefix }}{{ kind }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{#- Whether an event of kind ``kind`` may be applied to a household in status ``status``. -#}
{% macro transition_allowed(kind, status, prefix='') -%}
  multiIf(
  {%- for name, sources, _ in status_transitions() %}
    {{ kind }} = '{{ prefix }}{{ name }}', {{ status }} in ('{{ sources | join("', '") }}'),
  {%- endfor %}
    0)
{%- endmacro %}

{#- The status after an event of kind ``kind`` meets status ``status`` (unchanged when not allowed). -#}
{% macro status_after(kind, status, prefix='') -%}
  multiIf(
  {%- for name, sources, target in status_transitions() %}
    {{ kind }} = '{{ prefix }}{{ name }}' and {{ status }} in ('{{ sources | join("', '") }}'), '{{ target }}',
  {%- endfor %}
    {{ status }})
{%- endmacro %}
