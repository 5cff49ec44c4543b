{#
  Spark versions of the provenance-list macros (macros/provenance/). Same contract as the
  DuckDB ones: a provenance list is a sorted array of distinct, non-null source ids, an empty
  array (never NULL) when there are none, so equal provenance compares equal on both engines.
  Written for Spark 3.1+ SQL (no array_compact, which is 3.4+), so a cluster on an older
  Spark runs them too.
#}

{% macro spark__empty_source_list() -%}
  cast(array() as array<string>)
{%- endmacro %}


{# collect_set drops NULLs and gives an empty array for a group without any. #}
{% macro spark__collect_sources(column) -%}
  coalesce(array_sort(collect_set({{ column }})), {{ provenance_pipeline.empty_source_list() }})
{%- endmacro %}


{# collect_list skips NULL lists; the elements of a provenance list are never NULL. #}
{% macro spark__collect_source_lists(list_column) -%}
  coalesce(array_sort(array_distinct(flatten(collect_list({{ list_column }})))), {{ provenance_pipeline.empty_source_list() }})
{%- endmacro %}


{# The group's rows all hold the same list (see shared_source_list): take one. #}
{% macro spark__shared_source_list(list_column) -%}
  first({{ list_column }})
{%- endmacro %}


{% macro spark__merge_sources(scalars, lists) -%}
  {%- set parts = [] -%}
  {%- if scalars -%}{%- do parts.append('array(' ~ (scalars | join(', ')) ~ ')') -%}{%- endif -%}
  {%- for l in lists -%}{%- do parts.append('coalesce(' ~ l ~ ', ' ~ provenance_pipeline.empty_source_list() ~ ')') -%}{%- endfor -%}
  {%- if not parts -%}{{ exceptions.raise_compiler_error('merge_sources() needs at least one column') }}{%- endif -%}
  array_sort(array_distinct(filter(flatten(array({{ parts | join(', ') }})), source_id -> source_id is not null)))
{%- endmacro %}


{% macro spark__source_list_contains(list_column, value) -%}
  array_contains({{ list_column }}, {{ value }})
{%- endmacro %}


{% macro spark__source_lists_overlap(list_column, other_list) -%}
  arrays_overlap({{ list_column }}, {{ other_list }})
{%- endmacro %}


{# In a select list, a generator: one row per element, none for an empty array (like unnest). #}
{% macro spark__explode_sources(list_expression) -%}
  explode({{ list_expression }})
{%- endmacro %}
