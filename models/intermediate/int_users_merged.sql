-- One row per canonical user: the attributes of its primary record (the earliest account,
-- ties by account id), when it was first seen, and the provenance of EVERY merged record. The
-- merge provenance is the same on each of the user's accounts: its union is that mask.

with

accounts as (

    select * from {{ ref('int_user_accounts') }}

),

users as (

    select * from {{ ref('int_users_despammed') }}

),

members as (

    select
        accounts.user_id,
        users.account_id,
        users.email,
        users.country_code,
        users.created_at,
        users.source_id,
        accounts.merge_source_mask
    from users
    inner join accounts
        on accounts.account_id = users.account_id

),

ranked as (

    select
        user_id,
        account_id,
        email,
        country_code,
        row_number() over (
            partition by user_id
            order by created_at, account_id
        ) as record_rank
    from members

),

primary_record as (

    select * from ranked
    where record_rank = 1

),

rolled_up as (

    select
        user_id,
        count(*) as n_accounts,
        min(created_at) as first_seen_at,
        {{ collect_sources('members.source_id') }} as source_mask,
        {{ collect_source_masks('merge_source_mask') }} as merge_source_mask
    from members
    group by user_id

),

final as (

    select
        rolled_up.user_id,
        primary_record.account_id as primary_account_id,
        primary_record.email,
        primary_record.country_code,
        rolled_up.first_seen_at,
        rolled_up.n_accounts,
        rolled_up.source_mask,
        rolled_up.merge_source_mask
    from rolled_up
    inner join primary_record
        on primary_record.user_id = rolled_up.user_id

)

select * from final
