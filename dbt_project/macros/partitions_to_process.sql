{#-
    Incremental base models: on an incremental run, only the raw rows of the landing partitions
    this model has not processed since they were (re)loaded: partitions not in the model yet,
    partitions the loader reloaded after the model last took them (raw._load_log.loaded_at), and
    partitions without a load-log row (loaded by other means, e.g. bring-your-own-data, so always
    taken again). Renders nothing on a first or full-refresh run: every partition is processed.
-#}
{% macro partitions_to_process(source_relation, log_source_name) -%}
    {%- if is_incremental() -%}
        where _partition_date in (
            select landed.partition_date
            from (
                select distinct _partition_date as partition_date from {{ source_relation }}
            ) as landed
            left join {{ source('ingestion', '_load_log') }} as load_log
                on
                    load_log.source = '{{ log_source_name }}'
                    and landed.partition_date = load_log.partition_date
            left join (
                select
                    landed_date,
                    max(loaded_at) as loaded_at
                from {{ this }}
                group by landed_date
            ) as processed
                on landed.partition_date = processed.landed_date
            where
                processed.landed_date is null
                or load_log.loaded_at is null
                or load_log.loaded_at > processed.loaded_at
        )
    {%- endif -%}
{%- endmacro %}
