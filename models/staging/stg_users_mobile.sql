with

source as (

    select * from {{ raw('users_mobile') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        account_id,
        lower(trim(email)) as email,
        signup_ip as ip_address,
        upper(country) as country_code,
        lower(device_os) as device_os,
        cast(created_at as timestamp) as created_at,
        source_id

    from source

)

select * from renamed
