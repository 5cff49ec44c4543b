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

)

select checked.*
from {{ model }} as checked
where exists (
    select 1
    from excluded
    where
    {%- if is_list %}
        {{ provenance_pipeline.source_list_contains('checked.' ~ column_name, 'excluded.source_id') }}
    {%- else %}
        checked.{{ column_name }} = excluded.source_id
    {%- endif %}
)

{% endtest %}
