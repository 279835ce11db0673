-- Every raw orders row, typed and cleaned; incremental by landing partition (macros
-- landed_partitions, partitions_to_process).

with

{{ landed_partitions('shop', 'orders') }},

renamed as (

    select
        -- ids
        {{ clean_text('order_id') }} as order_id,
        {{ clean_text('customer_id') }} as customer_id,

        -- strings
        lower({{ clean_text('status') }}) as status,

        -- numbers
        try_cast({{ clean_text('amount') }} as decimal(18, 2)) as amount,

        -- dates
        _partition_date as landed_date,

        -- timestamps
        {{ parse_timestamp('ordered_at') }} as ordered_at,

        _source_file as source_file,
        _line_number as source_line

    from source

),

{{ with_load_time() }}

select * from final
