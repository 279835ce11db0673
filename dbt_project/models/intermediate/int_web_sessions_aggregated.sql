-- One row per logged-in web session: its resolved customer and what happened in it. A session
-- is the customer's when any of its events carries a customer_id (the smallest resolved id if,
-- oddly, several do); anonymous sessions are left out. Added up from the per-session and
-- source-customer state (int_web_session_customers_aggregated), with today's identity map.
-- Incremental state (macro identity_joined_state): a night adds up again only the sessions
-- whose events changed and those with a source id whose resolved customer changed.

{{ identity_joined_state('int_web_session_customers_aggregated', 'session_id', 'customer_id') }},

session_customers as (

    select * from rows_to_join

),

resolved_customers as (

    select * from {{ ref('int_customers_resolved') }}

),

sessions as (

    select
        session_customers.session_id,
        min(resolved_customers.customer_id) as customer_id,
        cast(sum(session_customers.event_count) as bigint) as event_count,
        cast(sum(session_customers.page_view_count) as bigint) as page_view_count,
        cast(sum(session_customers.cart_add_count) as bigint) as cart_add_count,
        cast(sum(session_customers.checkout_count) as bigint) as checkout_count,
        min(session_customers.started_at) as started_at,
        max(session_customers.ended_at) as ended_at
    from session_customers
    left join resolved_customers
        on session_customers.customer_id = resolved_customers.source_customer_id
    group by session_customers.session_id

),

final as (

    select
        -- ids
        session_id,
        customer_id,

        -- numbers
        event_count,
        page_view_count,
        cart_add_count,
        checkout_count,

        -- booleans
        event_count = 1 as is_bounce,
        cart_add_count > 0 and checkout_count = 0 as is_cart_abandoned,

        -- timestamps
        started_at,
        ended_at

    from sessions
    where customer_id is not null

)

select * from final
