{# Engine-specific scalar SQL the models need, dispatched like the provenance macros. #}

{# hash_bucket(expression, buckets): a stable bucket 0..buckets-1 from a hash of the value. #}
{% macro hash_bucket(expression, buckets) -%}
  {{ return(adapter.dispatch('hash_bucket', 'provenance_pipeline')(expression, buckets)) }}
{%- endmacro %}

{% macro default__hash_bucket(expression, buckets) -%}
  {{ provenance_pipeline.no_adapter_version('hash_bucket') }}
{%- endmacro %}

{% macro duckdb__hash_bucket(expression, buckets) -%}
  cast(md5_number(cast({{ expression }} as varchar)) % {{ buckets | int }} as integer)
{%- endmacro %}


{# days_between(start, end): whole days from `start` to `end` (dates or timestamps). #}
{% macro days_between(start, end) -%}
  {{ return(adapter.dispatch('days_between', 'provenance_pipeline')(start, end)) }}
{%- endmacro %}

{% macro default__days_between(start, end) -%}
  {{ provenance_pipeline.no_adapter_version('days_between') }}
{%- endmacro %}

{% macro duckdb__days_between(start, end) -%}
  date_diff('day', cast({{ start }} as date), cast({{ end }} as date))
{%- endmacro %}
