with

source as (

    select * from {{ raw('users_partner') }}
    where {{ keep_active_sources('source_id') }}

),

renamed as (

    select
        partner_user_ref as account_id,
        lower(trim(email_address)) as email,
        case lower(trim(country_name))
            when 'germany' then 'DE'
            when 'france' then 'FR'
            when 'united kingdom' then 'GB'
            when 'netherlands' then 'NL'
            when 'spain' then 'ES'
            when 'italy' then 'IT'
            when 'poland' then 'PL'
        end as country_code,
        cast(registered_on as timestamp) as created_at,
        source_id

    from source

)

select * from renamed
