{#-
    The body of an incremental base model of raw events (web, email): every raw row of the
    landing partitions to process, typed and cleaned (ids trimmed, event type lower-cased, time
    read as UTC), with its landing partition, file and load time (macros landed_partitions and
    with_load_time). `id_columns` are the source's id columns, in output order.
-#}
{% macro base_events(source_name, table_name, id_columns) %}

with

{{ landed_partitions(source_name, table_name) }},

renamed as (

    select
        -- ids
        {% for column in id_columns %}{{ clean_text(column) }} as {{ column }},
        {% endfor %}

        -- strings
        lower({{ clean_text('event_type') }}) as event_type,

        -- dates
        _partition_date as landed_date,

        -- timestamps
        {{ parse_timestamp('occurred_at') }} as occurred_at,

        _source_file as source_file,
        _line_number as source_line

    from source

),

{{ with_load_time() }}

select * from final

{% endmacro %}
