{#-
    The CTEs shared by the incremental base models of a raw source, around their own `renamed`
    CTE: landed_partitions(...) renders `source` (the raw rows of the partitions to process,
    macro partitions_to_process) and `load_log` (when each partition was loaded);
    with_load_time() renders `final`: the renamed rows with the load time of their partition,
    so that a later reload is processed again. It also sets the model's pre-hook
    delete_retracted_partitions: the rows of partitions raw no longer has are removed.
-#}
{% macro landed_partitions(source_name, table_name) -%}

{{ config(pre_hook=(
    "{{ delete_retracted_partitions(source('" ~ source_name ~ "', '" ~ table_name ~ "')) }}"
)) }}

source as (

    select * from {{ source(source_name, table_name) }}
    {{ partitions_to_process(source(source_name, table_name), table_name) }}

),

load_log as (

    select * from {{ source('ingestion', '_load_log') }}
    where source = '{{ table_name }}'

)

{%- endmacro %}

{% macro with_load_time() -%}

final as (

    select
        renamed.*,
        coalesce(load_log.loaded_at, current_timestamp) as loaded_at
    from renamed
    left join load_log
        on renamed.landed_date = load_log.partition_date

)

{%- endmacro %}
