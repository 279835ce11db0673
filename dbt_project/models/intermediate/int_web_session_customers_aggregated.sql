-- One row per web session and source customer id of its events (null for its events without
-- one): what those events did. The per-session and per-customer web metrics add these rows up
-- (int_web_sessions_aggregated, customer_features), so a night re-aggregates only the sessions
-- whose events changed (incremental state, macro aggregated_state).

{{ aggregated_state('int_web_events_deduplicated', 'event_id', 'session_id') }},

final as (

    select
        -- ids
        session_id,
        customer_id,

        -- numbers
        count(*) as event_count,
        count(*) filter (where event_type = 'page_view') as page_view_count,
        count(*) filter (where event_type = 'add_to_cart') as cart_add_count,
        count(*) filter (where event_type = 'checkout') as checkout_count,

        -- timestamps
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at

    from rows_to_aggregate
    group by session_id, customer_id

)

select * from final
