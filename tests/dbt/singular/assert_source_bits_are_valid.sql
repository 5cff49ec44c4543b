-- Provenance masks give each source the bit `source_bit` of the registry, and find a source's
-- id by its bit (macros/provenance/source_masks.sql): the registry's source_bit values must
-- be 0, 1, ..., n - 1, once each, at most 62 (masks are BIGINTs). A NULL, a duplicate, a value
-- out of range or a gap (a source deleted from the registry instead of quarantined) fails here,
-- before any model reads the registry. One test for all four (one node in `dbt build`).

with

registry as (

    select * from {{ ref('data_sources') }}

),

bits as (

    select
        count(*) as n_sources,
        count(source_bit) as n_bits,
        count(distinct source_bit) as n_distinct_bits,
        min(source_bit) as min_bit,
        max(source_bit) as max_bit
    from registry

)

select *
from bits
where n_sources > 0
  and (n_bits <> n_sources
       or n_distinct_bits <> n_sources
       or min_bit <> 0
       or max_bit <> n_sources - 1
       or max_bit > 62)
