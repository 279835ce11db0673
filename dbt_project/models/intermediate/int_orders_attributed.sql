-- Orders known on the as-of date, attached to the resolved customer, with the day-level fields
-- the marts group on. Every order of staging with a buyer is here; is_valid_for_spend says which
-- count. Guest orders (no customer id, kept by anonymous_orders: keep) belong to nobody: the
-- inner join leaves them out of every per-customer mart. Incremental state (macro
-- attributed_state): a night recomputes only the orders that changed and the orders of the
-- source ids whose resolved customer changed (a merge, a split, a first CRM record).

{{ attributed_state('int_orders_deduplicated', 'order_id', 'customer_id') }},

orders as (

    select * from rows_to_attribute

),

resolved_customers as (

    select * from {{ ref('int_customers_resolved') }}

),

final as (

    select
        -- ids
        orders.order_id,
        resolved_customers.customer_id,

        -- strings
        orders.status,

        -- numbers
        orders.amount,
        quarter(orders.ordered_at) as order_quarter,

        -- booleans
        orders.is_valid_for_spend,
        orders.is_cancelled,
        orders.is_returned,
        dayofweek(orders.ordered_at) in (0, 6) as is_weekend_order,

        -- dates
        orders.ordered_date,
        cast(date_trunc('month', orders.ordered_at) as date) as order_month,

        -- timestamps
        orders.ordered_at

    from orders
    inner join resolved_customers
        on orders.customer_id = resolved_customers.source_customer_id

)

select * from final
