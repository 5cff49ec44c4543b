-- ID merge: which canonical user each account belongs to.
--
-- Accounts linked by the ID-merge model (match score at or above `merge_match_threshold`, both
-- accounts still present after de-spam) form a group; the group's smallest account id is its
-- `user_id`. Groups are found by passing the smallest id along the links `merge_hops` times, a
-- fixed number of steps (engine-neutral, no recursive SQL): one person has at most one account
-- per feed, so a group needs two steps, and the extra steps absorb the model's rare wrong links
-- between people. The singular test `assert_merge_groups_converged` fails if that is too few.
-- Each step reads the previous one once (an account's new anchor is the least anchor among
-- itself and its links): a step that read it twice would double the plan at every step on
-- engines that inline CTEs (Spark).
--
-- Provenance: `source_id` is the account record's own source; `user_source_mask` holds the
-- sources of every record in the group (they decide `user_id`), `merge_source_mask` those of the
-- links (source masks: see macros/provenance/source_masks.sql).

{%- set n_hops = var('merge_hops') | int %}

with

accounts as (

    select
        account_id,
        source_id
    from {{ ref('int_users_despammed') }}

),

pairs as (

    select
        account_id_a,
        account_id_b,
        source_id
    from {{ ref('stg_id_merge_pairs') }}
    where match_score >= {{ number_var('merge_match_threshold') }}
      and account_id_a <> account_id_b
      and account_id_a in (select accounts.account_id from accounts)
      and account_id_b in (select accounts.account_id from accounts)

),

links as (

    select
        account_id_a as account_id,
        account_id_b as linked_account_id,
        source_id
    from pairs

    union all

    select
        account_id_b as account_id,
        account_id_a as linked_account_id,
        source_id
    from pairs

),

hop_0 as (

    select
        account_id,
        account_id as anchor_id
    from accounts

),

reach as (

    select
        account_id,
        linked_account_id
    from links

    union all

    select
        account_id,
        account_id as linked_account_id
    from accounts

),
{% for hop in range(1, n_hops + 1) %}
hop_{{ hop }} as (

    select
        reach.account_id,
        min(previous.anchor_id) as anchor_id
    from reach
    inner join hop_{{ hop - 1 }} as previous
        on previous.account_id = reach.linked_account_id
    group by reach.account_id

),
{% endfor %}
members as (

    select
        accounts.account_id,
        groups.anchor_id as user_id,
        accounts.source_id
    from accounts
    inner join hop_{{ n_hops }} as groups
        on groups.account_id = accounts.account_id

),

group_records as (

    select
        user_id,
        {{ collect_sources('members.source_id') }} as user_source_mask
    from members
    group by user_id

),

group_links as (

    select
        members.user_id,
        links.source_id
    from links
    inner join members
        on members.account_id = links.account_id

),

group_merges as (

    select
        user_id,
        {{ collect_sources('group_links.source_id') }} as merge_source_mask
    from group_links
    group by user_id

),

final as (

    select
        members.account_id,
        members.user_id,
        members.source_id,
        group_records.user_source_mask,
        coalesce(group_merges.merge_source_mask, {{ empty_source_mask() }}) as merge_source_mask
    from members
    inner join group_records
        on group_records.user_id = members.user_id
    left join group_merges
        on group_merges.user_id = members.user_id

)

select * from final
