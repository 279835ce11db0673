{#-
    RFM quintile score 1-5 of a value among the rows of the query, 5 = best (highest value in
    `order_by`'s order): 1 + floor(5 * (rank - 1) / rows). Ties share the rank, so customers with
    the same value get the same score whatever their ids (deterministic, unlike ntile, which
    splits ties arbitrarily); with many ties a quintile can hold more than a fifth of the rows.
-#}
{% macro quintile_score(order_by) -%}
    cast(floor(5 * (rank() over (order by {{ order_by }}) - 1) / count(*) over ()) + 1 as integer)
{%- endmacro %}
