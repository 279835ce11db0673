with

source as (

    select * from {{ ref('base_web__events') }}
    -- as-of rule: only what had landed by the as-of date
    where landed_date <= {{ as_of_date() }}

),

deduplicated as (

    -- as-of rule on the event's own time (an event without a readable time cannot be placed),
    -- then one row per event: the copy that landed last
    select * from source
    where
        event_id is not null
        and occurred_at < {{ as_of_date() }} + interval 1 day
    qualify row_number() over (
            partition by event_id
            order by landed_date desc, source_file desc
        ) = 1

),

final as (

    select
        -- ids
        event_id,
        session_id,
        customer_id,
        anonymous_id,

        -- strings
        event_type,

        -- dates
        landed_date,

        -- timestamps
        occurred_at

    from deduplicated

)

select * from final
