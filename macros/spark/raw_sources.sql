{#
  register_raw_sources(): make the dbt sources `raw.raw_<name>` readable when the var
  `raw_data_dir` names a folder of Parquet files (scripts/generate_data.py --format parquet).
  Called from `on-run-start` in dbt_project.yml; does nothing while `raw_data_dir` is empty
  (the demo run reads the seeds).

  - DuckDB reads each file through the source's `meta.external_location` (dbt-duckdb), so
    there is nothing to do.
  - Spark has no such hook: each source becomes an external Parquet table over its file in
    the schema `raw` (dropping a table defined this way leaves the file alone).
  - Any other adapter fails at compile time, naming what to add.
#}
{% macro register_raw_sources() -%}
  {{ return(adapter.dispatch('register_raw_sources', 'provenance_pipeline')()) }}
{%- endmacro %}

{% macro default__register_raw_sources() -%}
  {%- if var('raw_data_dir', '') -%}
    {{ exceptions.raise_compiler_error(
        'register_raw_sources has no implementation for adapter ' ~ adapter.type()
        ~ ': add ' ~ adapter.type() ~ '__register_raw_sources (raw_data_dir is set)') }}
  {%- endif -%}
  {{ return('') }}
{%- endmacro %}

{% macro duckdb__register_raw_sources() -%}
  {{ return('') }}
{%- endmacro %}

{% macro spark__register_raw_sources() -%}
  {%- set data_dir = var('raw_data_dir', '') -%}
  {%- if not data_dir or not execute -%}{{ return('') }}{%- endif -%}
  {%- if "'" in data_dir or '\\' in data_dir -%}
    {{ exceptions.raise_compiler_error('raw_data_dir: quotes and backslashes are not allowed in the path ' ~ (data_dir | tojson)) }}
  {%- endif -%}
  {%- set tables = [] -%}
  {%- for node in graph.sources.values() if node.package_name == project_name and node.source_name == 'raw' -%}
    {%- do tables.append(node) -%}
  {%- endfor -%}
  {%- if tables -%}
    {%- do run_query('create schema if not exists ' ~ adapter.quote(tables[0].schema)) -%}
  {%- endif -%}
  {%- for node in tables -%}
    {%- set relation = api.Relation.create(schema=node.schema, identifier=node.identifier) -%}
    {%- set path = data_dir.rstrip('/') ~ '/' ~ node.identifier ~ '.parquet' -%}
    {%- do log('raw source ' ~ relation ~ ' <- ' ~ path) -%}
    {%- do run_query('drop table if exists ' ~ relation) -%}
    {%- do run_query('create table ' ~ relation ~ " using parquet options (path '" ~ path ~ "')") -%}
  {%- endfor -%}
  {{ return('') }}
{%- endmacro %}
