-- Training data for "is this user looking for a job?": one row per canonical user with a
-- resolved label, its features, and a deterministic train/test split (a hash of user_id, so a
-- user stays on the same side in every build). Provenance: the user's records (`source_ids`),
-- the merge links (`merge_source_ids`), the events (`event_source_ids`) and the labels
-- (`label_source_ids`), as sorted lists of source ids: the intermediate models' source masks,
-- decoded (source_list) here where people read them.

with

users as (

    select * from {{ ref('int_users_merged') }}

),

activity as (

    select * from {{ ref('int_user_activity') }}

),

labels as (

    select * from {{ ref('int_labels_resolved') }}

),

joined as (

    select
        users.user_id,
        users.country_code,
        users.n_accounts,
        {{ days_between('users.first_seen_at', date_var('as_of_date')) }} as tenure_days,
        coalesce(activity.n_events, 0) as n_events,
        coalesce(activity.n_job_searches, 0) as n_job_searches,
        coalesce(activity.n_job_views, 0) as n_job_views,
        coalesce(activity.n_apply_clicks, 0) as n_apply_clicks,
        coalesce(activity.n_profile_updates, 0) as n_profile_updates,
        coalesce(activity.n_messages_sent, 0) as n_messages_sent,
        coalesce(activity.active_span_days, 0) as active_span_days,
        labels.is_job_seeker,
        labels.vote_agreement as label_agreement,
        case
            when {{ hash_bucket('users.user_id', 100) }} < {{ number_var('test_split_percent') }}
                then 'test'
            else 'train'
        end as split,
        users.source_mask,
        users.merge_source_mask,
        activity.event_source_mask,
        labels.label_source_mask
    from users
    inner join labels
        on labels.user_id = users.user_id
    left join activity
        on activity.user_id = users.user_id

),

-- the source masks decoded once the rows are joined (decoding before the joins would carry
-- lists through them)
final as (

    select
        user_id,
        country_code,
        n_accounts,
        tenure_days,
        n_events,
        n_job_searches,
        n_job_views,
        n_apply_clicks,
        n_profile_updates,
        n_messages_sent,
        active_span_days,
        is_job_seeker,
        label_agreement,
        split,
        {{ source_list('joined.source_mask') }} as source_ids,
        {{ source_list('joined.merge_source_mask') }} as merge_source_ids,
        {{ source_list('joined.event_source_mask') }} as event_source_ids,
        {{ source_list('joined.label_source_mask') }} as label_source_ids
    from joined

)

select * from final
