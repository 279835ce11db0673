-- One row per order known on the as-of date: landed by then and placed before the end of the
-- as-of day, the copy landed last. Nothing is filtered for quality: the flags of stg_shop__orders
-- say which orders count as spend.

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

known_by_as_of_date as (

    -- as-of rule: only what had landed by the as-of date, and orders placed after the as-of day
    -- are not known yet; an order whose time cannot be read is kept (flagged) rather than dropped
    select * from orders
    where
        landed_date <= {{ as_of_date() }}
        and (ordered_at is null or ordered_at < {{ as_of_date() }} + interval 1 day)

),

deduplicated as (

    -- one row per order: the copy that landed last (a re-sent order replaces the earlier one)
    select * from known_by_as_of_date
    where order_id is not null
    qualify row_number() over (
            partition by order_id
            order by landed_date desc, source_file desc, ordered_at desc nulls last
        ) = 1

),

final as (

    select
        -- ids
        order_id,
        customer_id,

        -- strings
        status,

        -- numbers
        amount,

        -- booleans
        is_completed,
        is_cancelled,
        is_returned,
        is_valid_amount,
        is_valid_for_spend,

        -- dates
        ordered_date,
        landed_date,

        -- timestamps
        ordered_at

    from deduplicated

)

select * from final
