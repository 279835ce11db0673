{#-
    A person's value of a profile column, merged over their CRM records: the value of the record
    with the smallest source id that has one (an aggregate over rows with source_customer_id,
    grouped by the resolved customer_id).
-#}
{% macro person_value(column) -%}
    first({{ column }} order by source_customer_id) filter (where {{ column }} is not null)
{%- endmacro %}
