{#-
    The local part (before the '@') and the domain (after it) of a normalised email, for the
    fuzzy identity rule that compares addresses of the same domain. Null without an '@'.
-#}
{% macro email_local_part(column) -%}
    case when position('@' in {{ column }}) > 0 then split_part({{ column }}, '@', 1) end
{%- endmacro %}

{% macro email_domain(column) -%}
    case when position('@' in {{ column }}) > 0 then split_part({{ column }}, '@', 2) end
{%- endmacro %}
