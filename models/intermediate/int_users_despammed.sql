-- User accounts that no spam source blocks: neither the account nor its sign-up IP is on the
-- blocklist (reported accounts, blacklisted IPs, spam score at or above the threshold).
-- The blocklist only filters (anti-join): it contributes no values, so nothing to carry.

with

users as (

    select * from {{ ref('int_users_unioned') }}

),

blocklist as (

    select * from {{ ref('int_spam_blocklist') }}

),

final as (

    select
        users.account_id,
        users.email,
        users.ip_address,
        users.country_code,
        users.device_os,
        users.created_at,
        users.source_id
    from users
    where not exists (
            select 1
            from blocklist
            where blocklist.blocked_kind = 'account'
              and blocklist.blocked_value = users.account_id
        )
      and not exists (
            select 1
            from blocklist
            where blocklist.blocked_kind = 'ip'
              and blocklist.blocked_value = users.ip_address
        )

)

select * from final
