{#-
    Each resolved customer's behaviour up to the end of the as-of day, joined from the orders, web
    sessions and e-mail events: the per-customer part of customer_features (which adds what needs
    every customer at once, the spend fences, and what moves with the as-of date alone: recency,
    tenure, orders per month, from the times kept here). A feature that needs a source the run
    does not have (var available_sources, e.g. orders only) is null, not 0.

    An incremental state (macro customer_state): a night recomputes only the customers whose
    orders, sessions, e-mail events, identity or signup changed, and those with a session that
    left the last 90 days. Built in parts of the customers (materialization state_in_parts, var
    customers_per_build_part): every input is filtered to the part's customers (macro
    in_customer_part) and, on an incremental night, to the night's customers (macro
    in_customer_state_night) before it is joined and aggregated, so the working memory is that
    of one part.

    The e-mail and web customers' aggregates carry the CRM id an event had (source id): they are
    joined to the part's resolved customers, not filtered themselves.
-#}

{%- set recent_days = 90 -%}
{%- set night = customer_state(
    upstreams=[
        ['int_orders_attributed', 'changes', 'order_id', 'customer_id', 'customer'],
        ['int_web_sessions_aggregated', 'touched', 'session_id', 'customer_id', 'customer'],
        ['int_web_session_customers_aggregated', 'touched', 'session_id', 'customer_id', 'source'],
        ['int_email_customers_aggregated', 'touched', 'customer_id', 'customer_id', 'source'],
    ],
    window=['int_web_sessions_aggregated', 'started_at', recent_days],
    extra=var('available_sources') | join(','),
) %}
{{ config(parts_sized_by='int_customers_cohorted') }}

with

customers_cohorted as (

    select * from {{ ref('int_customers_cohorted') }}
    where
        {{ in_customer_part('customer_id') }}
        and {{ in_customer_state_night('customer_id', night) }}

),

resolved_customers as (

    select * from {{ ref('int_customers_resolved') }}
    where
        {{ in_customer_part('customer_id') }}
        and {{ in_customer_state_night('customer_id', night) }}

),

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where
        {{ in_customer_part('customer_id') }}
        and {{ in_customer_state_night('customer_id', night) }}

),

web_session_customers as (

    select * from {{ ref('int_web_session_customers_aggregated') }}

),

web_sessions as (

    select * from {{ ref('int_web_sessions_aggregated') }}
    where
        {{ in_customer_part('customer_id') }}
        and {{ in_customer_state_night('customer_id', night) }}

),

email_customers as (

    select * from {{ ref('int_email_customers_aggregated') }}

),

people as (

    select
        customer_id,
        signup_at
    from customers_cohorted

),

order_metrics as (

    -- spend features count completed orders with a plausible amount only
    select
        customer_id,
        count(*) as order_count,
        count(distinct ordered_date) as order_days,
        sum(amount) as total_spend,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) filter (where order_quarter = 1) / count(*) as order_share_q1,
        count(*) filter (where order_quarter = 2) / count(*) as order_share_q2,
        count(*) filter (where order_quarter = 3) / count(*) as order_share_q3,
        count(*) filter (where order_quarter = 4) / count(*) as order_share_q4,
        count(*) filter (where is_weekend_order) / count(*) as order_share_weekend
    from orders
    where is_valid_for_spend
    group by customer_id

),

excluded_orders as (

    select
        customer_id,
        count(*) filter (where is_cancelled) as cancelled_order_count,
        count(*) filter (where is_returned) as returned_order_count,
        -- cancelled, returned, or an amount of zero or less (or implausible): none counts
        count(*) filter (where not is_valid_for_spend) as voided_order_count
    from orders
    group by customer_id

),

web_metrics as (

    select
        resolved_customers.customer_id,
        count(distinct web_session_customers.session_id) as web_session_count,
        cast(sum(web_session_customers.event_count) as bigint) as web_event_count,
        cast(sum(web_session_customers.cart_add_count) as bigint) as cart_add_count,
        max(web_session_customers.ended_at) as last_web_event_at
    from web_session_customers
    inner join resolved_customers
        on web_session_customers.customer_id = resolved_customers.source_customer_id
    group by resolved_customers.customer_id

),

session_metrics as (

    select
        customer_id,
        avg(page_view_count) as avg_pages_per_session,
        avg(cast(is_bounce as integer)) as bounce_rate,
        avg(cast(is_cart_abandoned as integer)) filter (
            where cart_add_count > 0
        ) as cart_abandonment_rate,
        count(*) filter (
            where started_at >= {{ as_of_date() }} - interval {{ recent_days - 1 }} day
        ) as sessions_last_90_days
    from web_sessions
    group by customer_id

),

email_metrics as (

    select
        resolved_customers.customer_id,
        cast(sum(email_customers.email_sent_count) as bigint) as email_sent_count,
        cast(sum(email_customers.email_open_count) as bigint) as email_open_count,
        cast(sum(email_customers.email_click_count) as bigint) as email_click_count,
        max(email_customers.last_email_engagement_at) as last_email_engagement_at
    from email_customers
    inner join resolved_customers
        on email_customers.customer_id = resolved_customers.source_customer_id
    group by resolved_customers.customer_id

),

joined as (

    select
        people.customer_id,
        people.signup_at,
        order_metrics.first_order_at,
        order_metrics.last_order_at,
        coalesce(order_metrics.order_count, 0) as order_count,
        coalesce(order_metrics.order_days, 0) as order_days,
        cast(coalesce(order_metrics.total_spend, 0) as decimal(18, 2)) as total_spend,
        cast(
            round(order_metrics.total_spend / order_metrics.order_count, 2) as decimal(18, 2)
        ) as avg_order_value,
        {{ when_source_available('web_events', 'coalesce(web_metrics.web_session_count, 0)') }}
            as web_session_count,
        {{ when_source_available('web_events', 'coalesce(web_metrics.web_event_count, 0)') }}
            as web_event_count,
        {{ when_source_available('web_events', 'coalesce(web_metrics.cart_add_count, 0)') }}
            as cart_add_count,
        {{ when_source_available('email_events', 'coalesce(email_metrics.email_sent_count, 0)') }}
            as email_sent_count,
        {{ when_source_available('email_events', 'coalesce(email_metrics.email_open_count, 0)') }}
            as email_open_count,
        {{ when_source_available(
            'email_events', 'coalesce(email_metrics.email_click_count, 0)'
        ) }} as email_click_count,
        coalesce(excluded_orders.cancelled_order_count, 0) as cancelled_order_count,
        coalesce(excluded_orders.returned_order_count, 0) as returned_order_count,
        coalesce(excluded_orders.voided_order_count, 0) as voided_order_count,
        session_metrics.avg_pages_per_session,
        session_metrics.bounce_rate,
        session_metrics.cart_abandonment_rate,
        {{ when_source_available(
            'web_events', 'coalesce(session_metrics.sessions_last_90_days, 0)'
        ) }} as sessions_last_90_days,
        email_metrics.email_open_count / nullif(email_metrics.email_sent_count, 0)
            as email_open_rate,
        email_metrics.email_click_count / nullif(email_metrics.email_sent_count, 0)
            as email_click_rate,
        greatest(
            order_metrics.last_order_at,
            web_metrics.last_web_event_at,
            email_metrics.last_email_engagement_at
        ) as last_engagement_at,
        order_metrics.order_share_q1,
        order_metrics.order_share_q2,
        order_metrics.order_share_q3,
        order_metrics.order_share_q4,
        order_metrics.order_share_weekend
    from people
    left join order_metrics
        on people.customer_id = order_metrics.customer_id
    left join excluded_orders
        on people.customer_id = excluded_orders.customer_id
    left join web_metrics
        on people.customer_id = web_metrics.customer_id
    left join session_metrics
        on people.customer_id = session_metrics.customer_id
    left join email_metrics
        on people.customer_id = email_metrics.customer_id

)

select * from joined
