with

source as (

    select * from {{ raw('spam_ips') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        trim(ip_address) as ip_address,
        cast(listed_on as date) as listed_on,
        source_id

    from source

)

select * from renamed
