{#
  Row-level helpers for provenance lists: build, merge, test and explode them. Models never
  write list SQL themselves; they call these (dispatched per engine).
#}

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
  merge_sources(scalars=[...], lists=[...]): the provenance columns of one row (scalar source
  ids and lists of them) merged into one sorted list of distinct source ids. NULLs are skipped.
#}
{% macro merge_sources(scalars=[], lists=[]) -%}
  {{ return(adapter.dispatch('merge_sources', 'provenance_pipeline')(scalars, lists)) }}
{%- endmacro %}

{% macro default__merge_sources(scalars, lists) -%}
  {{ provenance_pipeline.no_adapter_version('merge_sources') }}
{%- endmacro %}

{% macro duckdb__merge_sources(scalars, lists) -%}
  {%- set parts = [] -%}
  {%- if scalars -%}{%- do parts.append('[' ~ (scalars | join(', ')) ~ ']') -%}{%- endif -%}
  {%- for l in lists -%}{%- do parts.append('coalesce(' ~ l ~ ', ' ~ provenance_pipeline.empty_source_list() ~ ')') -%}{%- endfor -%}
  {%- if not parts -%}{{ exceptions.raise_compiler_error('merge_sources() needs at least one column') }}{%- endif -%}
  coalesce(list_sort(list_distinct(flatten([{{ parts | join(', ') }}]))), {{ provenance_pipeline.empty_source_list() }})
{%- endmacro %}


{# source_list_contains(list_column, value): true when the list holds the source id `value`. #}
{% macro source_list_contains(list_column, value) -%}
  {{ return(adapter.dispatch('source_list_contains', 'provenance_pipeline')(list_column, value)) }}
{%- endmacro %}

{% macro default__source_list_contains(list_column, value) -%}
  {{ provenance_pipeline.no_adapter_version('source_list_contains') }}
{%- endmacro %}

{% macro duckdb__source_list_contains(list_column, value) -%}
  list_contains({{ list_column }}, {{ value }})
{%- endmacro %}


{# source_lists_overlap(list_column, other_list): true when the two lists share a source id. #}
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
  explode_sources(list_expression): in a select list, one output row per source id of the list
  (rows with an empty list produce none).
#}
{% macro explode_sources(list_expression) -%}
  {{ return(adapter.dispatch('explode_sources', 'provenance_pipeline')(list_expression)) }}
{%- endmacro %}

{% macro default__explode_sources(list_expression) -%}
  {{ provenance_pipeline.no_adapter_version('explode_sources') }}
{%- endmacro %}

{% macro duckdb__explode_sources(list_expression) -%}
  unnest({{ list_expression }})
{%- endmacro %}


{#
  is_source_list_type(data_type): does a column of this warehouse type hold a list of source ids
  (as opposed to one source id)? Used by the generic test `no_excluded_sources`.
#}
{% macro is_source_list_type(data_type) -%}
  {{ return(adapter.dispatch('is_source_list_type', 'provenance_pipeline')(data_type)) }}
{%- endmacro %}

{% macro default__is_source_list_type(data_type) -%}
  {%- set t = (data_type or '') | lower -%}
  {{ return(t.endswith('[]') or t.startswith('array') or t.startswith('list')) }}
{%- endmacro %}

{% macro duckdb__is_source_list_type(data_type) -%}
  {{ return(provenance_pipeline.default__is_source_list_type(data_type)) }}
{%- endmacro %}
