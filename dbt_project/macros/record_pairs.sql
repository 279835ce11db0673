{#-
    Identity resolution: the pairs of records of `relation` (one row per source_customer_id) whose
    `keys` are all equal and not null, each pair once (left id < right id), named `rule`.
-#}
{% macro record_pairs(relation, keys, rule) -%}
    select
        left_record.source_customer_id as left_customer_id,
        right_record.source_customer_id as right_customer_id,
        '{{ rule }}' as match_rule
    from {{ relation }} as left_record
    inner join {{ relation }} as right_record
        on
            {% for key in keys %}left_record.{{ key }} = right_record.{{ key }} and
            {% endfor %}left_record.source_customer_id < right_record.source_customer_id
{%- endmacro %}
