{#
  Seeds on Spark. The seed YAML (seeds/_seeds.yml) declares `column_types` in DuckDB's words,
  and Spark rejects a VARCHAR without a length. `spark__create_csv_table` and
  `spark_insert_csv_rows` are dbt-spark 1.11's own `spark__create_csv_table` /
  `spark__load_csv_rows` (a project macro of the same name takes precedence over the
  adapter's) with one change: each declared type goes through `spark_seed_type`, which turns
  a length-less varchar / text / char into `string`.
#}

{% macro spark_seed_type(data_type) -%}
  {%- set t = (data_type | string).strip() -%}
  {%- if t | lower in ['varchar', 'text', 'char', 'bpchar', 'character varying'] -%}
    {{ return('string') }}
  {%- endif -%}
  {{ return(t) }}
{%- endmacro %}


{% macro spark__create_csv_table(model, agate_table) %}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set quote_seed_column = model['config'].get('quote_columns', None) -%}

  {% set sql %}
    create table {{ this.render() }} (
        {%- for col_name in agate_table.column_names -%}
            {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
            {%- set type = provenance_pipeline.spark_seed_type(column_override.get(col_name, inferred_type)) -%}
            {%- set column_name = (col_name | string) -%}
            {{ adapter.quote_seed_column(column_name, quote_seed_column) }} {{ type }} {%- if not loop.last -%}, {%- endif -%}
        {%- endfor -%}
    )
    {{ file_format_clause() }}
    {{ partition_cols(label="partitioned by") }}
    {{ clustered_cols(label="clustered by") }}
    {{ location_clause() }}
    {{ comment_clause() }}
  {% endset %}

  {% call statement('_') -%}
    {{ sql }}
  {%- endcall %}

  {{ return(sql) }}
{% endmacro %}


{#
  With a local master (the `session` target) Spark reads the seed's CSV file itself (one
  statement, seconds) instead of parsing thousands of `insert ... values` rows; a cluster
  (thrift, http, odbc) cannot see the file, so it gets dbt-spark's batched inserts. Empty
  fields are NULL in both, as in dbt's own CSV reading. (dbt's `target` does not carry the
  connection method, so Spark's own `spark.master` decides.)
#}
{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set master = run_query('set spark.master').columns[1].values()[0] | string -%}
  {%- if master.startswith('local') -%}
    {{ return(provenance_pipeline.spark_load_csv_file(model, agate_table)) }}
  {%- endif -%}
  {{ return(provenance_pipeline.spark_insert_csv_rows(model, agate_table)) }}
{% endmacro %}


{% macro spark_load_csv_file(model, agate_table) %}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set path = (model['root_path'] ~ '/' ~ model['original_file_path']) -%}
  {%- if "'" in path or '\\' in path -%}
    {{ return(provenance_pipeline.spark_insert_csv_rows(model, agate_table)) }}
  {%- endif -%}
  {%- set view = 'seed_file_' ~ model['name'] -%}
  {% call statement('_') -%}
    create or replace temporary view {{ view }}
    using csv
    options (path '{{ path }}', header 'true', escape '"', multiLine 'true', inferSchema 'false')
  {%- endcall %}
  {% set sql %}
    insert into {{ this.render() }}
    select
      {%- for col_name in agate_table.column_names %}
        {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
        {%- set type = provenance_pipeline.spark_seed_type(column_override.get(col_name, inferred_type)) %}
        cast(`{{ col_name }}` as {{ type }}){{ ',' if not loop.last }}
      {%- endfor %}
    from {{ view }}
  {% endset %}
  {% call statement('_') -%}
    {{ sql }}
  {%- endcall %}
  {% call statement('_') -%}
    drop view if exists {{ view }}
  {%- endcall %}
  {{ return(sql) }}
{% endmacro %}


{% macro spark_insert_csv_rows(model, agate_table) %}

  {% set batch_size = get_batch_size() %}
  {% set column_override = model['config'].get('column_types', {}) %}

  {% set statements = [] %}

  {% for chunk in agate_table.rows | batch(batch_size) %}
      {% set bindings = [] %}

      {% for row in chunk %}
          {% do bindings.extend(row) %}
      {% endfor %}

      {% set sql %}
          insert into {{ this.render() }} values
          {% for row in chunk -%}
              ({%- for col_name in agate_table.column_names -%}
                  {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                  {%- set type = provenance_pipeline.spark_seed_type(column_override.get(col_name, inferred_type)) -%}
                    cast({{ get_binding_char() }} as {{type}})
                  {%- if not loop.last%},{%- endif %}
              {%- endfor -%})
              {%- if not loop.last%},{%- endif %}
          {%- endfor %}
      {% endset %}

      {% do adapter.add_query(sql, bindings=bindings, abridge_sql_log=True) %}

      {% if loop.index0 == 0 %}
          {% do statements.append(sql) %}
      {% endif %}
  {% endfor %}

  {# Return SQL so we can render it out into the compiled files #}
  {{ return(statements[0]) }}
{% endmacro %}
