-- What each source contributes: for every model of the pipeline, how many of its rows carry
-- the source in their provenance, next to what the source cost and how long it took to get
-- (from the registry). A row with several sources counts once for each of them; a source that
-- contributes nothing (excluded, quarantined, or filtered away) has no row. Rows are counted
-- per distinct provenance first (a handful of combinations per model), so only those few
-- combinations are merged, decoded and exploded, not every row's provenance (Spark wants the
-- decoding, a correlated subquery, in a projection of its own). Each model is listed with
-- its provenance columns by kind: scalar source ids, source masks (intermediate models) and
-- lists of source ids (marts).

{%- set inventoried = [
    ('stg_users_web', ['source_id'], [], []),
    ('stg_users_mobile', ['source_id'], [], []),
    ('stg_users_partner', ['source_id'], [], []),
    ('stg_spam_accounts', ['source_id'], [], []),
    ('stg_spam_ips', ['source_id'], [], []),
    ('stg_spam_scores', ['source_id'], [], []),
    ('stg_id_merge_pairs', ['source_id'], [], []),
    ('stg_job_search_labels', ['source_id'], [], []),
    ('stg_user_events', ['source_id'], [], []),
    ('int_users_despammed', ['source_id'], [], []),
    ('int_users_merged', [], ['source_mask', 'merge_source_mask'], []),
    ('int_user_activity', [], ['event_source_mask', 'user_source_mask', 'merge_source_mask'], []),
    ('int_labels_resolved', [], ['label_source_mask', 'user_source_mask', 'merge_source_mask'], []),
    ('training_examples', [], [], ['source_ids', 'merge_source_ids', 'event_source_ids', 'label_source_ids']),
    ('label_quality', ['source_id'], [], ['consensus_source_ids', 'user_source_ids', 'merge_source_ids']),
] %}

with

registry as (

    select * from {{ ref('data_sources') }}

),

contributions as (
{% for model_name, scalars, masks, lists in inventoried %}
    {%- set columns = scalars + masks + lists %}
    {%- if lists %}
    select
        '{{ model_name }}' as model_name,
        {{ explode_source_list(merge_source_lists(scalars=scalars, lists=lists)) }} as source_id,
        n_rows
    from (
        select
            {{ columns | join(',\n            ') }},
            count(*) as n_rows
        from {{ ref(model_name) }}
        group by {{ columns | join(', ') }}
    ) as {{ model_name }}
    {%- elif masks %}
    select
        '{{ model_name }}' as model_name,
        {{ explode_source_list(model_name ~ '.source_ids') }} as source_id,
        n_rows
    from (
        select
            {{ source_list('grouped.source_mask') }} as source_ids,
            n_rows
        from (
            select
                {{ merge_sources(scalars=scalars, masks=masks) }} as source_mask,
                count(*) as n_rows
            from {{ ref(model_name) }}
            group by {{ columns | join(', ') }}
        ) as grouped
    ) as {{ model_name }}
    {%- else %}
    select
        '{{ model_name }}' as model_name,
        source_id,
        count(*) as n_rows
    from {{ ref(model_name) }}
    group by source_id
    {%- endif %}
    {{ 'union all' if not loop.last }}
{% endfor %}
),

counted as (

    select
        model_name,
        source_id,
        sum(n_rows) as n_rows
    from contributions
    group by model_name, source_id

),

final as (

    select
        counted.model_name,
        counted.source_id,
        cast(counted.n_rows as bigint) as n_rows,
        registry.kind,
        registry.vendor,
        cast(registry.cost_usd as double) as cost_usd,
        registry.hours_to_acquire,
        registry.acquired_on,
        cast(registry.cost_usd as double) / counted.n_rows as cost_per_row
    from counted
    left join registry
        on registry.source_id = counted.source_id

)

select * from final
