{#
  Spark versions of the provenance macros (macros/provenance/). Same contract as the DuckDB
  ones: a source mask is a BIGINT with the registry's `source_bit` of each source set (0, never
  NULL, for none), and `source_list` gives the sorted array of distinct source ids (an empty
  array, never NULL), so equal provenance compares equal on both engines. The registry is read
  by uncorrelated scalar subqueries, which Spark evaluates once per query. Written for Spark 3.1+
  SQL (bit_or, raise_error, higher-order functions), so a cluster on an older Spark runs them.
#}

{% macro spark__collect_sources(column) -%}
  coalesce(bit_or({{ provenance_pipeline.encode_source(column) }}), {{ provenance_pipeline.empty_source_mask() }})
{%- endmacro %}


{% macro spark__collect_source_masks(mask_column) -%}
  coalesce(bit_or({{ mask_column }}), {{ provenance_pipeline.empty_source_mask() }})
{%- endmacro %}


{# The ids ordered by bit: a sorted array of (source_bit, source_id) structs, then the ids. #}
{% macro spark__source_ids_by_bit() -%}
  (select transform(array_sort(collect_list(struct(source_bit, source_id))), registered -> registered.source_id) from {{ ref('data_sources') }})
{%- endmacro %}


{# array_position is 1-based and 0 when absent: nullif turns "absent" into the error. #}
{% macro spark__encode_source(column) -%}
  case when {{ column }} is null then {{ provenance_pipeline.empty_source_mask() }} else shiftleft(cast(1 as bigint), coalesce(nullif(array_position({{ provenance_pipeline.source_ids_by_bit() }}, {{ column }}), 0) - 1, raise_error(concat('provenance: source id "', {{ column }}, '" is not in the registry data_sources')))) end
{%- endmacro %}


{#
  Spark rejects a subquery inside a higher-order function (`filter`, `transform`, even
  `array_sort`), so the decode step is written without one: for each possible bit (0-62), the
  registry's id of that bit when the mask has it (`element_at` of the ids by bit; Spark computes
  the identical subqueries once), then NULLs removed and the ids sorted (`sort_array`).
#}
{% macro spark__source_list(mask) -%}
  {%- set ids = provenance_pipeline.source_ids_by_bit() -%}
  sort_array(array_except(array(
  {%- for bit in range(63) %}
    case when (shiftright({{ mask }}, {{ bit }}) & 1) = 1 then element_at({{ ids }}, {{ bit + 1 }}) end{{ ',' if not loop.last }}
  {%- endfor %}
  ), array(cast(null as string))))
{%- endmacro %}


{# In a select list, a generator: one row per element, none for an empty array (like unnest). #}
{% macro spark__explode_sources(mask) -%}
  explode({{ provenance_pipeline.source_list(mask) }})
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
