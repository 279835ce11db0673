-- Every landed order row (all partitions, every copy), typed and cleaned by base_shop__orders,
-- with the flags that say whether it may count as spend. Which copy is known on the as-of date is
-- decided in int_orders_deduplicated.

with

source as (

    select * from {{ ref('base_shop__orders') }}

),

renamed as (

    select
        -- ids
        order_id,
        customer_id,

        -- strings
        source_file,
        status,

        -- numbers
        amount,
        source_line,

        -- booleans
        status = 'completed' as is_completed,
        coalesce(status = 'cancelled', false) as is_cancelled,
        coalesce(status = 'returned', false) as is_returned,
        coalesce(
            amount > 0 and amount < {{ var('max_valid_order_amount') }}, false
        ) as is_valid_amount,
        coalesce(
            status = 'completed'
            and amount > 0
            and amount < {{ var('max_valid_order_amount') }}
            and ordered_at is not null,
            false
        ) as is_valid_for_spend,

        -- dates
        cast(ordered_at as date) as ordered_date,
        landed_date,

        -- timestamps
        ordered_at

    from source

)

select * from renamed
