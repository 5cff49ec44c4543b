{#
  raw(name): the raw relation `raw_<name>`.

  By default it is the seed `raw_<name>` (the committed demo data, dbt's roots). When the var
  `raw_data_dir` names a folder, it is the dbt source `raw.raw_<name>` instead: a Parquet file
  `<raw_data_dir>/raw_<name>.parquet` written by `scripts/generate_data.py --format parquet`
  (see models/staging/_raw__sources.yml).
#}
{% macro raw(name) -%}
  {%- if not modules.re.fullmatch('[a-z][a-z0-9_]*', name) -%}
    {{ exceptions.raise_compiler_error('raw(): not a relation name: ' ~ provenance_pipeline.show_value(name)) }}
  {%- endif -%}
  {%- set data_dir = var('raw_data_dir', '') -%}
  {%- if data_dir -%}
    {%- if "'" in data_dir or '\\' in data_dir -%}
      {{ exceptions.raise_compiler_error('raw_data_dir: quotes and backslashes are not allowed in the path ' ~ provenance_pipeline.show_value(data_dir)) }}
    {%- endif -%}
    {{ return(source('raw', 'raw_' ~ name)) }}
  {%- else -%}
    {{ return(ref('raw_' ~ name)) }}
  {%- endif -%}
{%- endmacro %}
