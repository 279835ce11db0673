with

source as (

    select * from {{ ref('base_shop__orders') }}
    -- as-of rule: only what had landed by the as-of date
    where landed_date <= {{ as_of_date() }}

),

known_by_as_of_date as (

    -- as-of rule: orders placed after the as-of day are not known yet; an order whose time
    -- cannot be read is kept (flagged below) rather than dropped unseen
    select * from source
    where ordered_at is null or ordered_at < {{ as_of_date() }} + interval 1 day

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

    from deduplicated

)

select * from final
