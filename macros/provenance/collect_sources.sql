{#
  Provenance of aggregated rows: the ONE way every aggregation in this project collects the
  source ids of its group. Each returns a sorted list of distinct, non-null source ids (an empty
  list when the group carries none), so equal provenance always compares equal.

  The `duckdb__` versions use DuckDB list functions, the `spark__` ones (macros/spark/) Spark's;
  `default__` fails at compile time naming the macro, so another engine adds its own
  `<adapter>__` version of each macro (see docs/pipeline.md, docs/spark.md).
#}

{# collect_sources(column): aggregate the scalar source ids of a group into a list. #}
{% macro collect_sources(column) -%}
  {{ return(adapter.dispatch('collect_sources', 'provenance_pipeline')(column)) }}
{%- endmacro %}

{% macro default__collect_sources(column) -%}
  {{ provenance_pipeline.no_adapter_version('collect_sources') }}
{%- endmacro %}

{% macro duckdb__collect_sources(column) -%}
  coalesce(list_sort(list(distinct {{ column }}) filter (where {{ column }} is not null)), {{ provenance_pipeline.empty_source_list() }})
{%- endmacro %}


{# collect_source_lists(list_column): aggregate the source-id lists of a group into one list. #}
{% macro collect_source_lists(list_column) -%}
  {{ return(adapter.dispatch('collect_source_lists', 'provenance_pipeline')(list_column)) }}
{%- endmacro %}

{% macro default__collect_source_lists(list_column) -%}
  {{ provenance_pipeline.no_adapter_version('collect_source_lists') }}
{%- endmacro %}

{% macro duckdb__collect_source_lists(list_column) -%}
  coalesce(list_sort(list_distinct(flatten(list({{ list_column }})))), {{ provenance_pipeline.empty_source_list() }})
{%- endmacro %}


{#
  shared_source_list(list_column): aggregate the provenance list that EVERY row of the group
  holds already, because it is a function of the group key (a user's `user_source_ids`, read
  per account and grouped by user). It takes that list once instead of collecting, flattening
  and sorting it again for each row of the group (the costliest part of provenance at scale,
  see benchmarks/README.md), and gives the same list. Use `collect_source_lists` when the rows
  of a group may carry different lists.
#}
{% macro shared_source_list(list_column) -%}
  {{ return(adapter.dispatch('shared_source_list', 'provenance_pipeline')(list_column)) }}
{%- endmacro %}

{% macro default__shared_source_list(list_column) -%}
  {{ provenance_pipeline.no_adapter_version('shared_source_list') }}
{%- endmacro %}

{% macro duckdb__shared_source_list(list_column) -%}
  any_value({{ list_column }})
{%- endmacro %}
