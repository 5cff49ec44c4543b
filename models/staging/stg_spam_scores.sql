with

source as (

    select * from {{ raw('spam_scores') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        score_id,
        account_id,
        cast(spam_score as double) as spam_score,
        cast(scored_at as timestamp) as scored_at,
        source_id

    from source

)

select * from renamed
