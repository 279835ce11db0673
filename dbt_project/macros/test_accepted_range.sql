{#-
    Generic test: every non-null value of the column lies between min_value and max_value
    (either may be omitted; bounds included unless inclusive is false).
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}

{% if min_value is none and max_value is none %}
{{ exceptions.raise_compiler_error("accepted_range needs min_value, max_value or both") }}
{% endif %}

with

validation as (

    select {{ column_name }} as value
    from {{ model }}
    where {{ column_name }} is not null

),

out_of_range as (

    select * from validation
    where
        false
        {% if min_value is not none %}or value {{ '<' if inclusive else '<=' }} {{ min_value }}
        {% endif %}{% if max_value is not none %}or value {{ '>' if inclusive else '>=' }} {{ max_value }}
        {% endif %}

)

select * from out_of_range

{% endtest %}
