-- One row per resolved customer and calendar month with a counted order (completed, plausible
-- amount): the activity the retention matrices count, with the customer's first order month
-- (a window over the customer's months). Incremental state (macro aggregated_state): a night
-- recomputes only the customers whose orders int_orders_attributed replaced or inserted.

{{ aggregated_state('int_orders_attributed', 'order_id', 'customer_id') }},

orders as (

    select * from rows_to_aggregate
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
