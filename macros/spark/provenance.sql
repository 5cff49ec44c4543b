{#
  Spark versions of the provenance macros (macros/provenance/). Same contract as the DuckDB
  ones: a source mask is a BIGINT with the registry's `source_bit` of each source set (0, never
  NULL, for none), and `source_list` gives the sorted array of distinct source ids (an empty
  array, never NULL), so equal provenance compares equal on both engines. The registry is read
  in scalar subqueries correlated with the id (encode) or the mask (decode). Written for Spark
  3.4+ SQL (bit_or, raise_error, correlated scalar subqueries with a non-equality predicate).
#}

{% macro spark__collect_sources(column) -%}
  coalesce(bit_or({{ provenance_pipeline.encode_source(column) }}), {{ provenance_pipeline.empty_source_mask() }})
{%- endmacro %}


{% macro spark__collect_source_masks(mask_column) -%}
  coalesce(bit_or({{ mask_column }}), {{ provenance_pipeline.empty_source_mask() }})
{%- endmacro %}


{% macro spark__encode_source(column) -%}
  case when {{ column }} is null then {{ provenance_pipeline.empty_source_mask() }} else shiftleft(cast(1 as bigint), coalesce((select registered.source_bit from {{ ref('data_sources') }} as registered where registered.source_id = {{ column }}), raise_error(concat('provenance: source id "', {{ column }}, '" is not in the registry data_sources')))) end
{%- endmacro %}


{# The registry's rows whose bit the mask has (a correlated scalar subquery: Spark 3.4+). #}
{% macro spark__source_list(mask) -%}
  coalesce((select sort_array(collect_list(registered.source_id)) from {{ ref('data_sources') }} as registered where (shiftright({{ mask }}, registered.source_bit) & 1) = 1), {{ provenance_pipeline.empty_source_list() }})
{%- endmacro %}


{% macro spark__source_lists_overlap(list_column, other_list) -%}
  arrays_overlap({{ list_column }}, {{ other_list }})
{%- endmacro %}


{% macro spark__empty_source_list() -%}
  cast(array() as array<string>)
{%- endmacro %}


{% macro spark__merge_source_lists(scalars, lists) -%}
  {%- set parts = [] -%}
  {%- if scalars -%}{%- do parts.append('array(' ~ (scalars | join(', ')) ~ ')') -%}{%- endif -%}
  {%- for l in lists -%}{%- do parts.append('coalesce(' ~ l ~ ', ' ~ provenance_pipeline.empty_source_list() ~ ')') -%}{%- endfor -%}
  {%- if not parts -%}{{ exceptions.raise_compiler_error('merge_source_lists() needs at least one column') }}{%- endif -%}
  array_sort(array_distinct(filter(flatten(array({{ parts | join(', ') }})), source_id -> source_id is not null)))
{%- endmacro %}


{% macro spark__explode_source_list(list_expression) -%}
  explode({{ list_expression }})
{%- endmacro %}
