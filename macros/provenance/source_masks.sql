{#
  Source masks: how a row's SET of sources is held between models. Models never write this SQL
  themselves; they call these macros (dispatched per engine).

  A source mask is a BIGINT with bit `source_bit` set for every source in the set, where
  `source_bit` is the source's column in the registry seed `data_sources` (0 to 62, assigned
  once per source, in order; never reused). Adding a source is adding a registry row with the
  next bit: no model changes. A single source id becomes a mask with `encode_source`, masks
  are unioned with `|` / `bit_or` (`merge_sources`, `collect_source_masks`), and
  `source_list` turns a mask back into the sorted list of source ids for the marts people read.

  Both directions read the registry in a scalar subquery of the model's SQL, correlated with the
  id (encoding: its bit) or the mask (decoding: the registry's rows whose bit the mask has), so
  the compiled SQL needs no warehouse, engines run it once per distinct id or mask, and lineage
  reads it as provenance (docs/provenance.md, "Source masks"). Pass qualified columns.
#}

{#
  encode_source(column): the mask of one source id (0 for NULL): 1 shifted by the id's
  `source_bit`, read from the registry by a subquery correlated with the id (engines join it
  once per distinct id, not once per row). An id that is not in the registry stops the query
  with an error naming it: it is never dropped. `column` must be qualified (`labels.source_id`):
  inside the subquery an unqualified `source_id` would name the registry's own column.
#}
{% macro encode_source(column) -%}
  {{ provenance_pipeline.check_qualified(column, 'encode_source') }}
  {{- return(adapter.dispatch('encode_source', 'provenance_pipeline')(column)) }}
{%- endmacro %}

{% macro default__encode_source(column) -%}
  {{ provenance_pipeline.no_adapter_version('encode_source') }}
{%- endmacro %}

{% macro duckdb__encode_source(column) -%}
  case when {{ column }} is null then {{ provenance_pipeline.empty_source_mask() }} else cast(1 as bigint) << coalesce((select registered.source_bit from {{ ref('data_sources') }} as registered where registered.source_id = {{ column }}), error('provenance: source id "' || {{ column }} || '" is not in the registry data_sources')) end
{%- endmacro %}


{# check_qualified(column, macro): fail at compile time unless `column` is `relation.column`. #}
{% macro check_qualified(column, macro) -%}
  {%- if not modules.re.fullmatch('[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)+', column | string) -%}
    {{ exceptions.raise_compiler_error(
        macro ~ '(' ~ provenance_pipeline.show_value(column) ~ '): qualify the column (for example labels.source_id):'
        ~ ' it is read inside a subquery on the registry, where an unqualified name could mean a registry column') }}
  {%- endif -%}
{%- endmacro %}


{# empty_source_mask(): the mask of no source. #}
{% macro empty_source_mask() -%}
  {{ return(adapter.dispatch('empty_source_mask', 'provenance_pipeline')()) }}
{%- endmacro %}

{% macro default__empty_source_mask() -%}
  cast(0 as bigint)
{%- endmacro %}


{#
  merge_sources(scalars=[...], masks=[...]): the provenance columns of one row (scalar source
  ids and source masks) merged into one source mask. NULLs count as no source.
#}
{% macro merge_sources(scalars=[], masks=[]) -%}
  {%- if not scalars and not masks -%}{{ exceptions.raise_compiler_error('merge_sources() needs at least one column') }}{%- endif -%}
  {{ return(adapter.dispatch('merge_sources', 'provenance_pipeline')(scalars, masks)) }}
{%- endmacro %}

{# Portable: `|` of the encoded ids and the masks (every engine here has `|` on integers). #}
{% macro default__merge_sources(scalars, masks) -%}
  {%- set parts = [] -%}
  {%- for s in scalars -%}{%- do parts.append(provenance_pipeline.encode_source(s)) -%}{%- endfor -%}
  {%- for m in masks -%}{%- do parts.append('coalesce(' ~ m ~ ', ' ~ provenance_pipeline.empty_source_mask() ~ ')') -%}{%- endfor -%}
  ({{ parts | join(' | ') }})
{%- endmacro %}


{#
  source_list(mask): the sorted list of the source ids whose bits the mask holds (an empty
  list for 0 or NULL): the readable form, written where people read provenance. A correlated
  subquery over the registry (the same shape on every engine): DuckDB and Spark run it once per
  distinct mask, not once per row.
#}
{% macro source_list(mask) -%}
  {{ provenance_pipeline.check_qualified(mask, 'source_list') }}
  {{- return(adapter.dispatch('source_list', 'provenance_pipeline')(mask)) }}
{%- endmacro %}

{% macro default__source_list(mask) -%}
  {{ provenance_pipeline.no_adapter_version('source_list') }}
{%- endmacro %}

{% macro duckdb__source_list(mask) -%}
  coalesce((select list(registered.source_id order by registered.source_id) from {{ ref('data_sources') }} as registered where (({{ mask }} >> registered.source_bit) & 1) = 1), {{ provenance_pipeline.empty_source_list() }})
{%- endmacro %}


{# source_masks_overlap(mask, other_mask): true when the two masks share a source. #}
{% macro source_masks_overlap(mask, other_mask) -%}
  {{ return(adapter.dispatch('source_masks_overlap', 'provenance_pipeline')(mask, other_mask)) }}
{%- endmacro %}

{% macro default__source_masks_overlap(mask, other_mask) -%}
  ({{ mask }} & {{ other_mask }}) <> 0
{%- endmacro %}


{# empty_source_list(): a typed empty list of source ids. #}
{% macro empty_source_list() -%}
  {{ return(adapter.dispatch('empty_source_list', 'provenance_pipeline')()) }}
{%- endmacro %}

{% macro default__empty_source_list() -%}
  {{ provenance_pipeline.no_adapter_version('empty_source_list') }}
{%- endmacro %}

{% macro duckdb__empty_source_list() -%}
  cast([] as varchar[])
{%- endmacro %}


{#
  merge_source_lists(scalars=[...], lists=[...]): scalar source ids and lists of them (the
  readable columns of the marts) merged into one sorted list of distinct ids. NULLs are skipped.
#}
{% macro merge_source_lists(scalars=[], lists=[]) -%}
  {{ return(adapter.dispatch('merge_source_lists', 'provenance_pipeline')(scalars, lists)) }}
{%- endmacro %}

{% macro default__merge_source_lists(scalars, lists) -%}
  {{ provenance_pipeline.no_adapter_version('merge_source_lists') }}
{%- endmacro %}

{% macro duckdb__merge_source_lists(scalars, lists) -%}
  {%- set parts = [] -%}
  {%- if scalars -%}{%- do parts.append('[' ~ (scalars | join(', ')) ~ ']') -%}{%- endif -%}
  {%- for l in lists -%}{%- do parts.append('coalesce(' ~ l ~ ', ' ~ provenance_pipeline.empty_source_list() ~ ')') -%}{%- endfor -%}
  {%- if not parts -%}{{ exceptions.raise_compiler_error('merge_source_lists() needs at least one column') }}{%- endif -%}
  coalesce(list_sort(list_distinct(flatten([{{ parts | join(', ') }}]))), {{ provenance_pipeline.empty_source_list() }})
{%- endmacro %}


{# explode_source_list(list_expression): in a select list, one output row per id of the list. #}
{% macro explode_source_list(list_expression) -%}
  {{ return(adapter.dispatch('explode_source_list', 'provenance_pipeline')(list_expression)) }}
{%- endmacro %}

{% macro default__explode_source_list(list_expression) -%}
  {{ provenance_pipeline.no_adapter_version('explode_source_list') }}
{%- endmacro %}

{% macro duckdb__explode_source_list(list_expression) -%}
  unnest({{ list_expression }})
{%- endmacro %}


{# source_lists_overlap(list_column, other_list): true when two lists of ids share one. #}
{% macro source_lists_overlap(list_column, other_list) -%}
  {{ return(adapter.dispatch('source_lists_overlap', 'provenance_pipeline')(list_column, other_list)) }}
{%- endmacro %}

{% macro default__source_lists_overlap(list_column, other_list) -%}
  {{ provenance_pipeline.no_adapter_version('source_lists_overlap') }}
{%- endmacro %}

{% macro duckdb__source_lists_overlap(list_column, other_list) -%}
  list_has_any({{ list_column }}, {{ other_list }})
{%- endmacro %}


{#
  is_source_list_type(data_type) / is_source_mask_type(data_type): does a column of this
  warehouse type hold a list of source ids, or a source mask (as opposed to one source id)?
  Used by the generic test `no_excluded_sources`.
#}
{% macro is_source_list_type(data_type) -%}
  {%- set t = (data_type or '') | lower -%}
  {{ return(t.endswith('[]') or t.startswith('array') or t.startswith('list')) }}
{%- endmacro %}

{% macro is_source_mask_type(data_type) -%}
  {%- set t = (data_type or '') | lower | trim -%}
  {{ return(t in ['bigint', 'int8', 'long', 'integer', 'int', 'int4', 'hugeint', 'ubigint']) }}
{%- endmacro %}
