{#-
    One row per resolved customer: each of `columns` merged over the person's CRM records
    (macro person_value), then `extra` aggregates (each given with its alias, `... as name`),
    then how many records were merged. A customer known only from orders (bring-your-own-data)
    has no record and null values.
-#}
{% macro merged_people(customers, resolved_customers, columns, extra=[]) %}
    select
        resolved_customers.customer_id,
        {% for item in columns + extra %}{{ item if ' as ' in item else person_value('customers.' ~ item) ~ ' as ' ~ item }},
        {% endfor %}count(*) as source_record_count
    from {{ resolved_customers }} as resolved_customers
    left join {{ customers }} as customers
        on resolved_customers.source_customer_id = customers.customer_id
    group by resolved_customers.customer_id
{% endmacro %}
