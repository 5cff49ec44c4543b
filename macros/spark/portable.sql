{# Spark versions of the engine-specific scalar macros (macros/pipeline/portable.sql). #}

{#
  hash_bucket: the same bucket as DuckDB's `md5_number(value) % buckets`, so a user lands on
  the same side of the train/test split on both engines. DuckDB's md5_number reads the 16-byte
  MD5 digest as one little-endian 128-bit number; Spark has no 128-bit integers, so the digest's
  bytes are reversed into that number's hex digits and its remainder is taken in two 64-bit
  halves: (high * 2^64 + low) mod b = ((high mod b) * (2^64 mod b) + low mod b) mod b.
#}
{% macro spark__hash_bucket(expression, buckets) -%}
  {%- set b = buckets | int -%}
  {%- if b < 1 -%}{{ exceptions.raise_compiler_error('hash_bucket(): buckets must be a positive integer, got ' ~ (buckets | tojson)) }}{%- endif -%}
  {%- set le_hex = "array_join(reverse(regexp_extract_all(md5(cast(" ~ expression ~ " as string)), '(..)', 1)), '')" -%}
  cast(pmod(
      pmod(cast(conv(substr({{ le_hex }}, 1, 16), 16, 10) as decimal(20, 0)), {{ b }}) * {{ (2 ** 64) % b }}
      + pmod(cast(conv(substr({{ le_hex }}, 17, 16), 16, 10) as decimal(20, 0)), {{ b }}),
      {{ b }}) as integer)
{%- endmacro %}


{# days_between: whole days from `start` to `end`, counted on calendar dates like DuckDB's date_diff('day', ...). #}
{% macro spark__days_between(start, end) -%}
  datediff(cast({{ end }} as date), cast({{ start }} as date))
{%- endmacro %}
