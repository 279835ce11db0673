{#-
    The key a free-text value is matched on in a mapping seed: lower case, without spaces or
    punctuation, so 'NY', 'N.Y.' and ' ny ' find the same seed row.
-#}
{% macro lookup_key(column) -%}
    regexp_replace(lower(trim({{ column }})), '[[:space:][:punct:]]', '', 'g')
{%- endmacro %}
