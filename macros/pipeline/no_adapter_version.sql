{#
  no_adapter_version(name): the `default__` of a dispatched macro that has no portable SQL.
  An adapter without its own `<adapter>__<name>` fails at compile time, naming the macro and
  what to add, instead of running another engine's SQL and failing with a database error.
#}
{% macro no_adapter_version(name) -%}
  {{ exceptions.raise_compiler_error(
      name ~ ' has no implementation for adapter ' ~ adapter.type()
      ~ ': add ' ~ adapter.type() ~ '__' ~ name ~ ' (see macros/spark/ for an example)') }}
{%- endmacro %}
