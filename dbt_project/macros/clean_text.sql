{#-
    A text value without leading or trailing whitespace of any kind (spaces, tabs, line breaks;
    SQL trim() only removes spaces), and null when nothing is left.
-#}
{% macro clean_text(column) -%}
    nullif(regexp_replace({{ column }}, '^\s+|\s+$', '', 'g'), '')
{%- endmacro %}
