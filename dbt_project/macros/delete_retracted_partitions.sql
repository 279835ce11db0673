{#-
    Pre-hook of the incremental base models (set by landed_partitions): remove the rows of the
    landing partitions raw no longer holds, before the partitions to process are replaced. A
    partition re-delivered with zero rows (header only: a retraction) has nothing for the
    delete+insert to key on, so without this its old rows would stay downstream for good and the
    incremental build would differ from a full refresh. Renders nothing on a first or
    full-refresh run.
-#}
{% macro delete_retracted_partitions(source_relation) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where landed_date not in (
            select distinct _partition_date from {{ source_relation }}
        )
    {%- endif -%}
{%- endmacro %}
