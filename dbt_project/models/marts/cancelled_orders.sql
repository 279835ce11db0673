-- The cancelled orders known on the as-of date, one row each, attached to the resolved customer.
-- They never count in frequency or monetary (customer_features); they are kept here so that
-- cancelled orders can be analysed rather than silently dropped.

with

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where is_cancelled

),

final as (

    select
        -- dates
        {{ as_of_date() }} as as_of_date,

        -- ids
        orders.order_id,
        orders.customer_id,

        -- numbers
        orders.amount,

        -- dates
        orders.ordered_date,

        -- timestamps
        orders.ordered_at

    from orders

)

select * from final
