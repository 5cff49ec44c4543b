-- Activity features per canonical user: events are counted per account and event source first
-- (the large aggregation; grouping by the source keeps its provenance as one scalar per group),
-- then rolled up over the user's accounts. Events of accounts that are not in
-- int_user_accounts (spam, excluded feeds) are dropped by the join. A user's record and merge
-- provenance is the same on each of its accounts: the union of those masks is that mask.

with

events as (

    select * from {{ ref('stg_user_events') }}

),

accounts as (

    select * from {{ ref('int_user_accounts') }}

),

account_activity as (

    select
        account_id,
        source_id,
        count(*) as n_events,
        sum(case when event_type = 'job_search' then 1 else 0 end) as n_job_searches,
        sum(case when event_type = 'job_view' then 1 else 0 end) as n_job_views,
        sum(case when event_type = 'apply_click' then 1 else 0 end) as n_apply_clicks,
        sum(case when event_type = 'profile_update' then 1 else 0 end) as n_profile_updates,
        sum(case when event_type = 'message_sent' then 1 else 0 end) as n_messages_sent,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from events
    group by account_id, source_id

),

user_activity as (

    select
        accounts.user_id,
        sum(account_activity.n_events) as n_events,
        sum(account_activity.n_job_searches) as n_job_searches,
        sum(account_activity.n_job_views) as n_job_views,
        sum(account_activity.n_apply_clicks) as n_apply_clicks,
        sum(account_activity.n_profile_updates) as n_profile_updates,
        sum(account_activity.n_messages_sent) as n_messages_sent,
        min(account_activity.first_event_at) as first_event_at,
        max(account_activity.last_event_at) as last_event_at,
        {{ collect_sources('account_activity.source_id') }} as event_source_mask,
        {{ collect_source_masks('accounts.user_source_mask') }} as user_source_mask,
        {{ collect_source_masks('accounts.merge_source_mask') }} as merge_source_mask
    from account_activity
    inner join accounts
        on accounts.account_id = account_activity.account_id
    group by accounts.user_id

),

final as (

    select
        user_id,
        cast(n_events as bigint) as n_events,
        cast(n_job_searches as bigint) as n_job_searches,
        cast(n_job_views as bigint) as n_job_views,
        cast(n_apply_clicks as bigint) as n_apply_clicks,
        cast(n_profile_updates as bigint) as n_profile_updates,
        cast(n_messages_sent as bigint) as n_messages_sent,
        first_event_at,
        last_event_at,
        {{ days_between('first_event_at', 'last_event_at') }} as active_span_days,
        event_source_mask,
        user_source_mask,
        merge_source_mask
    from user_activity

)

select * from final
