{#-
    The raw web_events rows typed and cleaned, one row per raw row, kept per landing partition:
    incremental, an incremental run processes only the partitions new or reloaded since it last
    ran (macro partitions_to_process) and replaces them (delete + insert on landed_date). The as-of
    rule and the deduplication are stg_web__events's.
-#}

with

source as (

    select * from {{ source('web', 'web_events') }}
    {{ partitions_to_process(source('web', 'web_events'), 'web_events') }}

),

load_log as (

    select * from {{ source('ingestion', '_load_log') }}
    where source = 'web_events'

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
