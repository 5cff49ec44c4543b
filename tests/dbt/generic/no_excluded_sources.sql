{#
  no_excluded_sources: fails for every row whose provenance column still carries an excluded
  source: one listed in the var `excluded_sources`, or one whose registry status is not
  `active` (quarantined). Works on a scalar source id column (`source_id`, `label_source_id`)
  and on a list column (`source_ids`, `merge_source_ids`): the column's warehouse type decides.
#}
{% test no_excluded_sources(model, column_name) %}
{%- set excluded = provenance_pipeline.excluded_source_ids(check_registered=false) -%}
{#- Before the model is built (`dbt compile` without a warehouse) the name decides: the
    contract's list columns are named `source_ids` / `<role>_source_ids`. -#}
{%- set is_list = (column_name | lower).endswith('source_ids') -%}
{%- if execute -%}
  {%- set columns = adapter.get_columns_in_relation(model) -%}
  {%- set found = [] -%}
  {%- for column in columns if column.name | lower == column_name | lower -%}
    {%- do found.append(column) -%}
  {%- endfor -%}
  {%- if columns and not found -%}
    {{ exceptions.raise_compiler_error('no_excluded_sources: ' ~ model ~ ' has no column "' ~ column_name ~ '"') }}
  {%- elif found -%}
    {%- set is_list = provenance_pipeline.is_source_list_type(found[0].data_type) -%}
  {%- endif -%}
{%- endif %}

with

excluded as (

    select data_sources.source_id
    from {{ ref('data_sources') }} as data_sources
    where data_sources.status <> 'active'
    {%- for source_id in excluded %}

    union all

    select '{{ source_id }}' as source_id
    {%- endfor %}

){{ ',' if is_list }}
{%- if is_list %}

excluded_list as (

    select {{ provenance_pipeline.collect_sources('excluded.source_id') }} as source_ids
    from excluded

)

{#- One list of excluded ids, tested against each row's list: a scan of the model, never a
    join of every row with every excluded id (that cost more than building the model). #}
select checked.*
from {{ model }} as checked
cross join excluded_list
where {{ provenance_pipeline.source_lists_overlap('checked.' ~ column_name, 'excluded_list.source_ids') }}
{%- else %}

select checked.*
from {{ model }} as checked
where checked.{{ column_name }} in (select excluded.source_id from excluded)
{%- endif %}

{% endtest %}
