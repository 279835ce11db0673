-- One row per order known on the as-of date: landed by then and placed before the end of the
-- as-of day (an order whose time cannot be read is kept, flagged), the copy landed last (a
-- re-sent order replaces the earlier one; of two in one file, the later line). Nothing is
-- filtered for quality: the flags of stg_shop__orders say which orders count as spend.
-- Incremental state (macro latest_known_copies): a night recomputes only the orders its
-- changes touch.

{{ latest_known_copies(
    'stg_shop__orders',
    'base_shop__orders',
    key='order_id',
    time_column='ordered_at',
    keep_null_time=true,
    then_by='ordered_at desc nulls last',
) }},

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
