{#-
    The key phones are compared on: the digits only, and of those the last 10, so '+1-555-010-0199',
    '(555) 010 0199' and '5550100199' match. Null with fewer than 7 digits (not a usable number).
-#}
{% macro phone_match_key(column) -%}
    case
        when length(regexp_replace({{ column }}, '[^0-9]', '', 'g')) >= 7
            then right(regexp_replace({{ column }}, '[^0-9]', '', 'g'), 10)
    end
{%- endmacro %}
