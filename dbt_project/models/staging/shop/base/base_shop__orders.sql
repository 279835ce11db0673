{#-
    The raw orders rows typed and cleaned, one row per raw row, kept per landing partition:
    incremental, an incremental run processes only the partitions new or reloaded since it last
    ran (macro partitions_to_process) and replaces them (delete + insert on landed_date). The as-of
    rule and the deduplication are stg_shop__orders's.
-#}

with

source as (

    select * from {{ source('shop', 'orders') }}
    {{ partitions_to_process(source('shop', 'orders'), 'orders') }}

),

load_log as (

    select * from {{ source('ingestion', '_load_log') }}
    where source = 'orders'

),

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
        try_cast({{ clean_text('ordered_at') }} as timestamp) as ordered_at,

        _source_file as source_file

    from source

),

final as (

    -- when the partition was loaded, so that a reload is processed again
    select
        renamed.*,
        coalesce(load_log.loaded_at, current_timestamp) as loaded_at
    from renamed
    left join load_log
        on renamed.landed_date = load_log.partition_date

)

select * from final
