with

source as (

    select * from {{ source('web', 'web_events') }}
    -- as-of rule: only what had landed by the as-of date
    where _partition_date <= {{ as_of_date() }}

),

renamed as (

    select
        -- ids
        {{ clean_text('event_id') }} as event_id,
        {{ clean_text('session_id') }} as session_id,
        {{ clean_text('customer_id') }} as customer_id,
        {{ clean_text('anonymous_id') }} as anonymous_id,

        -- strings
        lower({{ clean_text('event_type') }}) as event_type,

        -- dates
        _partition_date as landed_date,

        -- timestamps
        try_cast({{ clean_text('occurred_at') }} as timestamp) as occurred_at,

        _source_file as source_file

    from source

),

deduplicated as (

    -- as-of rule on the event's own time (an event without a readable time cannot be placed),
    -- then one row per event: the copy that landed last
    select * from renamed
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
