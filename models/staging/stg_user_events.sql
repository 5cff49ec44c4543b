with

source as (

    select * from {{ raw('user_events') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        event_id,
        account_id,
        event_type,
        cast(event_at as timestamp) as event_at,
        source_id

    from source

)

select * from renamed
