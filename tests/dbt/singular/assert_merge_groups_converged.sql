-- The ID merge passes the smallest account id along links a fixed number of times (var
-- merge_hops). If a group is wider than that, two linked accounts end with different user_ids:
-- each such link is a failing row (raise merge_hops).

with

accounts as (

    select * from {{ ref('int_user_accounts') }}

),

pairs as (

    select * from {{ ref('stg_id_merge_pairs') }}
    where match_score >= {{ number_var('merge_match_threshold') }}

)

select
    pairs.pair_id,
    account_a.user_id as user_id_a,
    account_b.user_id as user_id_b
from pairs
inner join accounts as account_a
    on account_a.account_id = pairs.account_id_a
inner join accounts as account_b
    on account_b.account_id = pairs.account_id_b
where account_a.user_id <> account_b.user_id
