with

source as (

    select * from {{ raw('users_web') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        account_id,
        lower(trim(email)) as email,
        signup_ip as ip_address,
        upper(country) as country_code,
        cast(created_at as timestamp) as created_at,
        source_id

    from source

)

select * from renamed
