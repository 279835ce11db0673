-- One row per logged-in web session: its resolved customer and what happened in it. A session
-- is the customer's when any of its events carries a customer_id (the smallest resolved id if,
-- oddly, several do); anonymous sessions are left out.

with

web_events as (

    select * from {{ ref('int_web_events_deduplicated') }}

),

resolved_customers as (

    select * from {{ ref('int_customers_resolved') }}

),

sessions as (

    select
        web_events.session_id,
        min(resolved_customers.customer_id) as customer_id,
        count(*) as event_count,
        count(*) filter (where web_events.event_type = 'page_view') as page_view_count,
        count(*) filter (where web_events.event_type = 'add_to_cart') as cart_add_count,
        count(*) filter (where web_events.event_type = 'checkout') as checkout_count,
        min(web_events.occurred_at) as started_at,
        max(web_events.occurred_at) as ended_at
    from web_events
    left join resolved_customers
        on web_events.customer_id = resolved_customers.source_customer_id
    group by web_events.session_id

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
