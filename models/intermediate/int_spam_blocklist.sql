-- Ephemeral helper: every account id and IP address the spam sources block, with the source
-- that blocks it. Used only to filter (anti-join) in int_users_despammed.

{{ config(materialized='ephemeral') }}

with

spam_accounts as (

    select * from {{ ref('stg_spam_accounts') }}

),

spam_ips as (

    select * from {{ ref('stg_spam_ips') }}

),

spam_scores as (

    select * from {{ ref('stg_spam_scores') }}
    where spam_score >= {{ number_var('spam_score_threshold') }}

),

final as (

    select
        'account' as blocked_kind,
        account_id as blocked_value,
        report_reason as block_reason,
        source_id
    from spam_accounts

    union all

    select
        'ip' as blocked_kind,
        ip_address as blocked_value,
        'blacklisted_ip' as block_reason,
        source_id
    from spam_ips

    union all

    select
        'account' as blocked_kind,
        account_id as blocked_value,
        'spam_score' as block_reason,
        source_id
    from spam_scores

)

select * from final
