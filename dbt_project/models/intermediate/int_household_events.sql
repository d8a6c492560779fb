{{ config(materialized='ephemeral') }}

-- Every event that bears on a household's facts, in one shape: the facts of D use only these.
-- Filters: recorded at or before the cut-off T, valid on or before D (int_household_facts keeps
-- only households with newly landed events when incremental). Registered members become one row
-- per member.

{% set common %}
    occurred_at, recorded_at, event_id, household_id, region_code
{% endset %}
{% set keep %}
    toDate(occurred_at) <= {{ as_of_date() }}
    and {{ within_cutoff('recorded_at') }}
{% endset %}

-- one scan of the poverty office's events: a registration's row is followed by one row per member
select {{ common }},
       if(member = '', event_name, 'member_registered') as kind,
       if(member = '', coalesce(person_id, ''), JSONExtractString(member, 'person_id')) as person,
       if(member = '',
          multiIf(event_name in ('monitoring_enrolled'), coalesce(monitoring_category, ''),
                  event_name in ('cadre_assigned', 'cadre_unassigned', 'visit_recorded'), coalesce(cadre_id, ''),
                  ''),
          JSONExtractString(member, 'labour_capacity')) as s,
       if(member = '', coalesce(net_income_per_capita, 0), 0) as n,
       if(member = '', coalesce(year, 0), 0) as y,
       toUInt8(0) as b,
       if(member = '' and event_name = 'household_registered', poverty_causes, []) as arr
from {{ ref('stg_poverty_office') }}
array join arrayConcat([''], if(event_name = 'household_registered', JSONExtractArrayRaw(members_json), [])) as member
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       coalesce(finding, '') as s, 0 as n, 0 as y, toUInt8(coalesce(satisfied, false)) as b, [] as arr
from {{ ref('stg_assessment') }}
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       coalesce(tekun_mode, '') as s, 0 as n, 0 as y, toUInt8(0) as b, [] as arr
from {{ ref('stg_civil_affairs') }}
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       '' as s, coalesce(out_of_pocket, 0) as n, coalesce(year, 0) as y, toUInt8(0) as b, [] as arr
from {{ ref('stg_health_insurance') }}
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       coalesce(stage, '') as s, 0 as n, 0 as y, toUInt8(0) as b, [] as arr
from {{ ref('stg_education') }}
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       multiIf(event_name = 'house_appraised', coalesce(grade, ''),
               event_name = 'house_renovated', coalesce(grade_after, ''),
               coalesce(new_region_code, '')) as s,
       0 as n, 0 as y, toUInt8(0) as b, [] as arr
from {{ ref('stg_housing') }}
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       '' as s, 0 as n, 0 as y, toUInt8(coalesce(safe, false)) as b, [] as arr
from {{ ref('stg_water') }}
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       coalesce(reason, '') as s, 0 as n, 0 as y, toUInt8(0) as b, [] as arr
from {{ ref('stg_public_security') }}
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       '' as s, 0 as n, 0 as y, toUInt8(0) as b, [] as arr
from {{ ref('stg_human_resources') }}
where {{ keep }}

union all

select {{ common }}, event_name as kind, coalesce(person_id, '') as person,
       '' as s, 0 as n, coalesce(disability_grade, 0) as y, toUInt8(0) as b, [] as arr
from {{ ref('stg_disabled_persons') }}
where {{ keep }}
