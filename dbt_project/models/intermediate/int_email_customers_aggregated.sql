-- One row per source customer id with email events known on the as-of date: how many of each
-- kind, and the first and last engagement (open or click). The per-person email metrics add
-- these rows up (customer_features, int_customers_cohorted), so a night re-aggregates only the
-- customers whose events changed (incremental state, macro aggregated_state).

{{ aggregated_state('int_email_events_deduplicated', 'event_id', 'customer_id') }},

final as (

    select
        -- ids
        customer_id,

        -- numbers
        count(*) filter (where event_type = 'sent') as email_sent_count,
        count(*) filter (where event_type = 'open') as email_open_count,
        count(*) filter (where event_type = 'click') as email_click_count,

        -- timestamps
        min(occurred_at) filter (
            where event_type in ('open', 'click')
        ) as first_email_engagement_at,
        max(occurred_at) filter (
            where event_type in ('open', 'click')
        ) as last_email_engagement_at

    from rows_to_aggregate
    where customer_id is not null
    group by customer_id

)

select * from final
