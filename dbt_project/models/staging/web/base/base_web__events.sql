-- Every raw web events row, typed and cleaned; incremental by landing partition (macros
-- landed_partitions, partitions_to_process).

with

{{ landed_partitions('web', 'web_events') }},

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
        {{ parse_timestamp('occurred_at') }} as occurred_at,

        _source_file as source_file

    from source

),

{{ with_load_time() }}

select * from final
