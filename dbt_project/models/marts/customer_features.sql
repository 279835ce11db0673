with

customers as (

    select * from {{ ref('stg_crm__customers') }}

),

resolved_customers as (

    select * from {{ ref('int_customers_resolved') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}
    -- spend features count completed orders with a plausible amount only
    where is_valid_for_spend

),

web_events as (

    select * from {{ ref('stg_web__events') }}

),

email_events as (

    select * from {{ ref('stg_email__events') }}

),

people as (

    select
        resolved_customers.customer_id,
        min(customers.signup_at) as signup_at
    from resolved_customers
    inner join customers
        on resolved_customers.source_customer_id = customers.customer_id
    group by resolved_customers.customer_id

),

order_metrics as (

    select
        resolved_customers.customer_id,
        count(*) as order_count,
        count(distinct orders.ordered_date) as order_days,
        sum(orders.amount) as total_spend,
        min(orders.ordered_at) as first_order_at,
        max(orders.ordered_at) as last_order_at
    from orders
    inner join resolved_customers
        on orders.customer_id = resolved_customers.source_customer_id
    group by resolved_customers.customer_id

),

web_metrics as (

    select
        resolved_customers.customer_id,
        count(distinct web_events.session_id) as web_session_count,
        count(*) as web_event_count,
        count(*) filter (where web_events.event_type = 'add_to_cart') as cart_add_count
    from web_events
    inner join resolved_customers
        on web_events.customer_id = resolved_customers.source_customer_id
    group by resolved_customers.customer_id

),

email_metrics as (

    select
        resolved_customers.customer_id,
        count(*) filter (where email_events.event_type = 'sent') as email_sent_count,
        count(*) filter (where email_events.event_type = 'open') as email_open_count,
        count(*) filter (where email_events.event_type = 'click') as email_click_count
    from email_events
    inner join resolved_customers
        on email_events.customer_id = resolved_customers.source_customer_id
    group by resolved_customers.customer_id

),

final as (

    -- column order is the data contract (docs/architecture.md)
    select
        {{ as_of_date() }} as as_of_date,
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
        date_diff(
            'day', cast(order_metrics.last_order_at as date), {{ as_of_date() }}
        ) as recency_days,
        date_diff('day', cast(people.signup_at as date), {{ as_of_date() }}) as tenure_days,
        coalesce(web_metrics.web_session_count, 0) as web_session_count,
        coalesce(web_metrics.web_event_count, 0) as web_event_count,
        coalesce(web_metrics.cart_add_count, 0) as cart_add_count,
        coalesce(email_metrics.email_sent_count, 0) as email_sent_count,
        coalesce(email_metrics.email_open_count, 0) as email_open_count,
        coalesce(email_metrics.email_click_count, 0) as email_click_count
    from people
    left join order_metrics
        on people.customer_id = order_metrics.customer_id
    left join web_metrics
        on people.customer_id = web_metrics.customer_id
    left join email_metrics
        on people.customer_id = email_metrics.customer_id

)

select * from final
