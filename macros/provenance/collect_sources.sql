{#
  Provenance of aggregated rows: the ONE way every aggregation in this project collects the
  source ids of its group, as a source mask (see source_masks.sql): a BIGINT whose bit
  `source_bit` (from the registry) is set for each source the group's rows carry. A mask costs
  what an integer costs to carry, join and write, and `bit_or` unions masks as cheaply as a sum;
  `source_list()` turns a mask back into the sorted list of ids where people read it (marts).
  An id that is not in the registry fails the build (see `encode_source`). A group without any
  source gives 0 (never NULL), so equal provenance always compares equal.

  The `duckdb__` versions use DuckDB SQL, the `spark__` ones (macros/spark/) Spark's;
  `default__` fails at compile time naming the macro, so another engine adds its own
  `<adapter>__` version of each macro (see docs/pipeline.md, docs/spark.md).
#}

{# collect_sources(column): aggregate the scalar source ids of a group into a source mask. #}
{% macro collect_sources(column) -%}
  {{ return(adapter.dispatch('collect_sources', 'provenance_pipeline')(column)) }}
{%- endmacro %}

{% macro default__collect_sources(column) -%}
  {{ provenance_pipeline.no_adapter_version('collect_sources') }}
{%- endmacro %}

{% macro duckdb__collect_sources(column) -%}
  coalesce(bit_or({{ provenance_pipeline.encode_source(column) }}), {{ provenance_pipeline.empty_source_mask() }})
{%- endmacro %}


{#
  collect_source_masks(mask_column): aggregate the source masks of a group into their union.
  Also right where every row of the group holds the same mask (a user's `user_source_mask`,
  read per account and grouped by user): the union of equal masks is that mask.
#}
{% macro collect_source_masks(mask_column) -%}
  {{ return(adapter.dispatch('collect_source_masks', 'provenance_pipeline')(mask_column)) }}
{%- endmacro %}

{% macro default__collect_source_masks(mask_column) -%}
  {{ provenance_pipeline.no_adapter_version('collect_source_masks') }}
{%- endmacro %}

{% macro duckdb__collect_source_masks(mask_column) -%}
  coalesce(bit_or({{ mask_column }}), {{ provenance_pipeline.empty_source_mask() }})
{%- endmacro %}
