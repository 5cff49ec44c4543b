-- One job-search label per canonical user, resolved from every labeller who labelled one of
-- the user's accounts:
--   1. a labeller's latest label of a user wins (a window: labellers correct themselves);
--   2. the majority of those votes decides;
--   3. a tied vote goes to the most confident label (a window again).
-- `label_source_mask` holds the labelling sources whose votes took part; the user's record and
-- merge provenance is the same on each of the user's accounts: it is read once per user, from
-- the user's anchor account (the account whose id became the user_id), and joined to the
-- result, never carried through the vote windows.

with

labels as (

    select * from {{ ref('stg_job_search_labels') }}

),

accounts as (

    select * from {{ ref('int_user_accounts') }}

),

user_labels as (

    select
        accounts.user_id,
        labels.label_id,
        labels.labeller_id,
        labels.is_job_seeker,
        labels.confidence,
        labels.labelled_at,
        labels.source_id
    from labels
    inner join accounts
        on accounts.account_id = labels.account_id

),

latest_per_labeller as (

    select
        *,
        row_number() over (
            partition by user_id, source_id, labeller_id
            order by labelled_at desc, label_id desc
        ) as label_rank
    from user_labels

),

votes as (

    select * from latest_per_labeller
    where label_rank = 1

),

tally as (

    select
        user_id,
        count(*) as n_votes,
        sum(case when is_job_seeker then 1 else 0 end) as n_votes_yes,
        {{ collect_sources('votes.source_id') }} as label_source_mask
    from votes
    group by user_id

),

user_provenance as (

    select
        user_id,
        user_source_mask,
        merge_source_mask
    from accounts
    where account_id = user_id

),

most_confident as (

    select
        user_id,
        is_job_seeker,
        row_number() over (
            partition by user_id
            order by confidence desc, labelled_at desc, label_id
        ) as confidence_rank
    from votes

),

final as (

    select
        tally.user_id,
        case
            when 2 * tally.n_votes_yes > tally.n_votes then true
            when 2 * tally.n_votes_yes < tally.n_votes then false
            else most_confident.is_job_seeker
        end as is_job_seeker,
        cast(tally.n_votes as bigint) as n_votes,
        cast(tally.n_votes_yes as bigint) as n_votes_yes,
        cast(greatest(tally.n_votes_yes, tally.n_votes - tally.n_votes_yes) as double)
            / tally.n_votes as vote_agreement,
        tally.label_source_mask,
        user_provenance.user_source_mask,
        user_provenance.merge_source_mask
    from tally
    inner join most_confident
        on most_confident.user_id = tally.user_id
        and most_confident.confidence_rank = 1
    inner join user_provenance
        on user_provenance.user_id = tally.user_id

)

select * from final
