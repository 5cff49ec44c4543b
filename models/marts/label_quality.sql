-- Label quality per labelling source: how often its labels agree with the consensus
-- (int_labels_resolved, which the source's own votes are part of), how many labels and
-- labellers it delivered, and what a label cost (registry cost / labels delivered).
-- A label whose account did not survive de-spam and merge has no consensus to compare with:
-- it counts in n_labels, not in n_labels_compared.

with

labels as (

    select * from {{ ref('stg_job_search_labels') }}

),

accounts as (

    select * from {{ ref('int_user_accounts') }}

),

consensus as (

    select * from {{ ref('int_labels_resolved') }}

),

registry as (

    select * from {{ ref('data_sources') }}

),

compared as (

    select
        labels.label_id,
        labels.labeller_id,
        labels.source_id,
        case
            when consensus.user_id is null then null
            when labels.is_job_seeker = consensus.is_job_seeker then 1
            else 0
        end as agrees_with_consensus,
        consensus.label_source_mask as consensus_source_mask,
        consensus.user_source_mask,
        consensus.merge_source_mask
    from labels
    left join accounts
        on accounts.account_id = labels.account_id
    left join consensus
        on consensus.user_id = accounts.user_id

),

per_source as (

    select
        source_id,
        count(*) as n_labels,
        count(distinct labeller_id) as n_labellers,
        count(agrees_with_consensus) as n_labels_compared,
        avg(agrees_with_consensus) as agreement_rate
    from compared
    group by source_id

),

-- the provenance of a source's labels: the union of their masks
per_source_provenance as (

    select
        source_id,
        {{ collect_source_masks('consensus_source_mask') }} as consensus_source_mask,
        {{ collect_source_masks('user_source_mask') }} as user_source_mask,
        {{ collect_source_masks('merge_source_mask') }} as merge_source_mask
    from compared
    group by source_id

),

final as (

    select
        per_source.source_id,
        registry.kind,
        registry.vendor,
        cast(per_source.n_labels as bigint) as n_labels,
        cast(per_source.n_labellers as bigint) as n_labellers,
        cast(per_source.n_labels_compared as bigint) as n_labels_compared,
        per_source.agreement_rate,
        cast(registry.cost_usd as double) as cost_usd,
        registry.hours_to_acquire,
        cast(registry.cost_usd as double) / per_source.n_labels as cost_per_label,
        {{ source_list('per_source_provenance.consensus_source_mask') }} as consensus_source_ids,
        {{ source_list('per_source_provenance.user_source_mask') }} as user_source_ids,
        {{ source_list('per_source_provenance.merge_source_mask') }} as merge_source_ids
    from per_source
    inner join per_source_provenance
        on per_source_provenance.source_id = per_source.source_id
    left join registry
        on registry.source_id = per_source.source_id

)

select * from final
