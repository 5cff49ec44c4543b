with

source as (

    select * from {{ raw('job_search_labels') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        label_id,
        account_id,
        labeller_id,
        cast(is_job_seeker as boolean) as is_job_seeker,
        cast(confidence as double) as confidence,
        cast(labelled_at as timestamp) as labelled_at,
        source_id

    from source

)

select * from renamed
