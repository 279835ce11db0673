{#- The orders known on the as-of date that one flag of int_orders_attributed marks (returned or
    cancelled), one row each with the resolved customer: the body of the marts returned_orders
    and cancelled_orders, which keep such orders for analysis (they never count as spend). -#}
{% macro orders_kept_apart(flag_column) %}

with

orders as (

    select * from {{ ref('int_orders_attributed') }}
    where {{ flag_column }}

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

{% endmacro %}
