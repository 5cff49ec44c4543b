{#
  no_excluded_sources: fails for every row whose provenance still carries an excluded source:
  one listed in the var `excluded_sources`, or one whose registry status is not `active`
  (quarantined). On one column (`column_name`, a column test) or on several at once (the model
  test's `columns` argument: one scan of the model for all its provenance columns, one test
  node instead of one per column). Each column may be a scalar source id (`source_id`,
  `label_source_id`), a source mask (`source_mask`, `user_source_mask`) or a list of source ids
  (`source_ids` in the marts): the column's warehouse type decides. A source mask or a list
  that is NULL fails too (the contract writes 0 or an empty list when there is no source).
#}
{% test no_excluded_sources(model, column_name=none, columns=none) %}
{%- set excluded = provenance_pipeline.excluded_source_ids(check_registered=false) -%}
{%- set names = (columns or [column_name]) | list -%}
{%- if not names or none in names -%}
  {{ exceptions.raise_compiler_error('no_excluded_sources: give a column (a column test) or `columns` (a model test) for ' ~ model) }}
{%- endif -%}
{#- Before the model is built (`dbt compile` without a warehouse) the name decides: the
    contract's masks are named `source_mask` / `<role>_source_mask`, its lists `source_ids` /
    `<role>_source_ids`. -#}
{%- set kinds = {} -%}
{%- for name in names -%}
  {%- set low = name | lower -%}
  {%- do kinds.update({name: 'mask' if low.endswith('source_mask') else ('list' if low.endswith('source_ids') else 'id')}) -%}
{%- endfor -%}
{%- if execute -%}
  {%- set found = {} -%}
  {%- for column in adapter.get_columns_in_relation(model) -%}
    {%- do found.update({column.name | lower: column.data_type}) -%}
  {%- endfor -%}
  {%- for name in names -%}
    {%- if found and (name | lower) not in found -%}
      {{ exceptions.raise_compiler_error('no_excluded_sources: ' ~ model ~ ' has no column "' ~ name ~ '"') }}
    {%- elif found -%}
      {%- set data_type = found[name | lower] -%}
      {%- do kinds.update({name: 'list' if provenance_pipeline.is_source_list_type(data_type)
                                 else ('mask' if provenance_pipeline.is_source_mask_type(data_type) else 'id')}) -%}
    {%- endif -%}
  {%- endfor -%}
{%- endif -%}
{%- set conditions = [] -%}
{%- for name in names -%}
  {%- set column = 'checked.' ~ name -%}
  {%- if kinds[name] == 'mask' -%}
    {%- do conditions.append(column ~ ' is null or ' ~ provenance_pipeline.source_masks_overlap(column, 'excluded_set.source_mask')) -%}
  {%- elif kinds[name] == 'list' -%}
    {%- do conditions.append(column ~ ' is null or ' ~ provenance_pipeline.source_lists_overlap(column, 'excluded_set.source_ids')) -%}
  {%- else -%}
    {%- do conditions.append(column ~ ' in (select excluded.source_id from excluded)') -%}
  {%- endif -%}
{%- endfor %}

with

excluded as (

    select data_sources.source_id
    from {{ ref('data_sources') }} as data_sources
    where data_sources.status <> 'active'
    {%- for source_id in excluded %}

    union all

    select '{{ source_id }}' as source_id
    {%- endfor %}

),

{#- One mask (and list) of the excluded ids, tested against each row's: a scan of the model,
    never a join of every row with every excluded id (that cost more than building the model). #}
excluded_set as (

    select
        source_mask,
        {{ provenance_pipeline.source_list('collected.source_mask') }} as source_ids
    from (
        select {{ provenance_pipeline.collect_sources('excluded.source_id') }} as source_mask
        from excluded
    ) as collected

)

select checked.*
from {{ model }} as checked
cross join excluded_set
where {% for condition in conditions %}({{ condition }}){{ '\n   or ' if not loop.last }}{% endfor %}

{% endtest %}
