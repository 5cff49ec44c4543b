{#
  Where sources are removed, in ONE place: every staging model filters its rows with

      where {{ keep_active_sources('source_id') }}

  which keeps rows whose source is registered with status `active` in the registry seed
  `data_sources` (so `quarantined` sources are dropped) and not listed in the dbt var
  `excluded_sources`. Everything downstream recomputes from staging.
#}
{% macro keep_active_sources(column='source_id') -%}
  {{ return(adapter.dispatch('keep_active_sources', 'provenance_pipeline')(column)) }}
{%- endmacro %}

{% macro default__keep_active_sources(column) -%}
  {%- set excluded = provenance_pipeline.excluded_source_ids() -%}
  {{ column }} in (
      select data_sources.source_id
      from {{ ref('data_sources') }} as data_sources
      where data_sources.status = 'active'
  )
  {%- if excluded %}
  and {{ column }} not in ({{ provenance_pipeline.source_id_literals(excluded) }})
  {%- endif %}
{%- endmacro %}

{% macro duckdb__keep_active_sources(column) -%}
  {{ provenance_pipeline.default__keep_active_sources(column) }}
{%- endmacro %}


{# source_id_literals(ids): validated source ids as a comma-separated list of SQL string literals. #}
{% macro source_id_literals(ids) -%}
  {%- for source_id in ids -%}
    {%- do provenance_pipeline.check_source_id_syntax(source_id, 'source id') -%}
    '{{ source_id }}'{{ ', ' if not loop.last }}
  {%- endfor -%}
{%- endmacro %}


{# check_source_id_syntax(value, what): fail unless `value` is a plain identifier ^[a-z][a-z0-9_]*$. #}
{% macro check_source_id_syntax(value, what='excluded_sources') -%}
  {%- if value is not string or not modules.re.fullmatch('[a-z][a-z0-9_]*', value) -%}
    {{ exceptions.raise_compiler_error(
        what ~ ': ' ~ provenance_pipeline.show_value(value) ~ ' is not a valid source id'
        ~ ' (expected lower-case letters, digits and _, starting with a letter)') }}
  {%- endif -%}
{%- endmacro %}


{#
  excluded_source_ids(check_registered=true): the dbt var `excluded_sources`, validated.
  It must be a list of source ids (a single id or a comma-separated string is accepted too).
  The format is always checked; when dbt executes SQL and the list is not empty, each id must
  also be registered in the seed `data_sources`. Errors name the offending value.
#}
{% macro excluded_source_ids(check_registered=true) -%}
  {%- set value = var('excluded_sources', []) -%}
  {%- if value is none -%}
    {%- set items = [] -%}
  {%- elif value is string -%}
    {%- set items = [] -%}
    {%- for part in value.split(',') if part.strip() -%}{%- do items.append(part.strip()) -%}{%- endfor -%}
  {%- elif value is mapping or value is not iterable -%}
    {{ exceptions.raise_compiler_error('excluded_sources: expected a list of source ids, got ' ~ provenance_pipeline.show_value(value)) }}
  {%- else -%}
    {%- set items = value | list -%}
  {%- endif -%}
  {%- for item in items -%}
    {%- do provenance_pipeline.check_source_id_syntax(item, 'excluded_sources') -%}
  {%- endfor -%}
  {%- if check_registered and execute and items -%}
    {%- set registry = ref('data_sources') -%}
    {%- set found = adapter.get_relation(database=registry.database, schema=registry.schema, identifier=registry.identifier) -%}
    {%- if found is none -%}
      {{ exceptions.raise_compiler_error(
          'excluded_sources: cannot check ' ~ (items | join(', ')) ~ ' against the registry:'
          ~ ' the seed data_sources is not loaded (run `dbt seed --select data_sources` first)') }}
    {%- endif -%}
    {%- set registered = run_query('select source_id from ' ~ found).columns[0].values() | list -%}
    {%- for item in items -%}
      {%- if item not in registered -%}
        {{ exceptions.raise_compiler_error(
            'excluded_sources: unknown source id ' ~ provenance_pipeline.show_value(item)
            ~ ' (not in the registry seed data_sources; registered: ' ~ (registered | sort | join(', ')) ~ ')') }}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(items) }}
{%- endmacro %}


{# show_value(value): a var's value for an error message: strings in double quotes, verbatim. #}
{% macro show_value(value) -%}
  {%- if value is string -%}
    {{ return('"' ~ value ~ '"') }}
  {%- else -%}
    {{ return(value | string) }}
  {%- endif -%}
{%- endmacro %}
