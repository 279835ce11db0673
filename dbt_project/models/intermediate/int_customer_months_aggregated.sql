-- One row per resolved customer and calendar month with a counted order (completed, plausible
-- amount): the activity the retention matrices count, with the customer's first order month
-- (a window over the customer's months).

with

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where is_valid_for_spend

),

months as (

    select
        customer_id,
        order_month as activity_month,
        count(*) as order_count,
        sum(amount) as revenue
    from orders
    group by customer_id, order_month

),

final as (

    select
        -- ids
        customer_id,

        -- numbers
        order_count,
        revenue,

        -- dates
        activity_month,
        min(activity_month) over (partition by customer_id) as first_order_month

    from months

)

select * from final
