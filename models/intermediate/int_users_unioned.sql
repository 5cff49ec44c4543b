-- All user accounts of the three feeds in one relation; one row per account, its feed's source_id.

with

web as (

    select * from {{ ref('stg_users_web') }}

),

mobile as (

    select * from {{ ref('stg_users_mobile') }}

),

partner as (

    select * from {{ ref('stg_users_partner') }}

),

final as (

    select
        account_id,
        email,
        ip_address,
        country_code,
        cast(null as {{ dbt.type_string() }}) as device_os,
        created_at,
        source_id
    from web

    union all

    select
        account_id,
        email,
        ip_address,
        country_code,
        device_os,
        created_at,
        source_id
    from mobile

    union all

    select
        account_id,
        email,
        cast(null as {{ dbt.type_string() }}) as ip_address,
        country_code,
        cast(null as {{ dbt.type_string() }}) as device_os,
        created_at,
        source_id
    from partner

)

select * from final
