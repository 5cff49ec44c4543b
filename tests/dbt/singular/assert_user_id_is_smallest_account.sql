-- A canonical user's id is the smallest account id of its group, and an account of the group.

select
    user_id,
    min(account_id) as smallest_account_id
from {{ ref('int_user_accounts') }}
group by user_id
having min(account_id) <> user_id
