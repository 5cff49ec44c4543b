with

source as (

    select * from {{ raw('spam_accounts') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        account_id,
        cast(reported_on as date) as reported_on,
        reason as report_reason,
        source_id

    from source

)

select * from renamed
