{# Vars that end up in SQL are checked first: no SQL is built from unchecked text. #}

{# number_var(name): the var as a number literal; fails naming the value when it is not one. #}
{% macro number_var(name) -%}
  {%- set value = var(name) -%}
  {%- if value is number and value is not boolean -%}
    {{ return(value) }}
  {%- elif value is string and modules.re.fullmatch('-?[0-9]+(\.[0-9]+)?', value.strip()) -%}
    {{ return(value.strip()) }}
  {%- endif -%}
  {{ exceptions.raise_compiler_error(name ~ ': expected a number, got ' ~ provenance_pipeline.show_value(value)) }}
{%- endmacro %}

{# date_var(name): the var (YYYY-MM-DD) as a SQL date literal; fails naming the value otherwise. #}
{% macro date_var(name) -%}
  {%- set value = var(name) | string -%}
  {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value) -%}
    {{ exceptions.raise_compiler_error(name ~ ': expected a date YYYY-MM-DD, got ' ~ provenance_pipeline.show_value(var(name))) }}
  {%- endif -%}
  {{ return("cast('" ~ value ~ "' as date)") }}
{%- endmacro %}
