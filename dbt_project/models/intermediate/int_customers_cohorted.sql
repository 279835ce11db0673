-- One row per resolved customer with the cohorts they belong to: acquisition (month of signup,
-- month of first counted order) and behavioural ones (quick first purchase, engaged by email
-- before the first order). An incremental state built in parts of the customers like
-- int_customer_metrics_joined (macro customer_state, materialization state_in_parts): a night
-- recomputes the customers whose orders, e-mail events, identity or signup changed, and each
-- part joins and aggregates only its own people.

{%- set night = customer_state(
    upstreams=[
        ['int_orders_attributed', 'changes', 'order_id', 'customer_id', 'customer'],
        ['int_email_customers_aggregated', 'touched', 'customer_id', 'customer_id', 'source'],
    ],
    extra=var('quick_first_purchase_days') | string,
) %}
{{ config(parts_sized_by='int_customers_resolved') }}

with

email_customers as (

    select * from {{ ref('int_email_customers_aggregated') }}

),

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where
        is_valid_for_spend
        and {{ in_customer_part('customer_id') }}
        and {{ in_customer_state_night('customer_id', night) }}

),

resolved_customers as (

    select * from {{ ref('int_customers_resolved') }}
    where
        {{ in_customer_part('customer_id') }}
        and {{ in_customer_state_night('customer_id', night) }}

),

customers as (

    select * from {{ ref('int_customers_deduplicated') }}

),

people as (

    select
        resolved_customers.customer_id,
        min(customers.signup_at) as signup_at
    from resolved_customers
    left join customers
        on resolved_customers.source_customer_id = customers.customer_id
    group by resolved_customers.customer_id

),

first_orders as (

    select
        customer_id,
        min(ordered_at) as first_order_at
    from orders
    group by customer_id

),

email_engagement as (

    select
        resolved_customers.customer_id,
        min(email_customers.first_email_engagement_at) as first_email_engagement_at
    from email_customers
    inner join resolved_customers
        on email_customers.customer_id = resolved_customers.source_customer_id
    group by resolved_customers.customer_id

),

final as (

    select
        -- ids
        people.customer_id,

        -- booleans
        coalesce(
            first_orders.first_order_at
            < people.signup_at + to_days({{ var('quick_first_purchase_days') }}),
            false
        ) as is_quick_first_purchase,
        coalesce(
            email_engagement.first_email_engagement_at < first_orders.first_order_at, false
        ) as is_email_engaged_before_first_order,

        -- dates
        cast(date_trunc('month', people.signup_at) as date) as signup_month,
        cast(date_trunc('month', first_orders.first_order_at) as date) as first_order_month,

        -- timestamps
        people.signup_at,
        first_orders.first_order_at

    from people
    left join first_orders
        on people.customer_id = first_orders.customer_id
    left join email_engagement
        on people.customer_id = email_engagement.customer_id

)

select * from final
