with

source as (

    select * from {{ raw('id_merge_pairs') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        pair_id,
        account_id_a,
        account_id_b,
        cast(match_score as double) as match_score,
        source_id

    from source

)

select * from renamed
