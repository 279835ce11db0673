{#-
    The filter that keeps one part of the customers, by a hash of `customer_id`, in a model
    materialized as state_in_parts: the materialization sets the DuckDB variables
    segments_customer_parts and segments_customer_part (constants folded into each scan) and
    runs the query once per part. Unset (one part, `dbt show`, any other materialization) the
    filter is `true` and keeps every row.

    Put it on every scan of a per-customer input (`where {{ in_customer_part('customer_id') }}`),
    so each part joins and aggregates only its own customers: a filter on the result would be
    applied after the whole query's work.
-#}
{% macro in_customer_part(customer_id) -%}
    (
        coalesce(getvariable('segments_customer_parts'), 1) = 1
        or hash({{ customer_id }}) % getvariable('segments_customer_parts')
        = getvariable('segments_customer_part')
    )
{%- endmacro %}
