{#-
    Pre-hook of the incremental marts: remove the rows of this run's as-of date before they are
    appended again, so a re-run replaces its own slice and leaves every other date untouched.
    Renders nothing on the first run (or a full refresh), when the table is created instead.
-#}
{% macro delete_as_of_slice() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where as_of_date = {{ as_of_date() }}
    {%- endif -%}
{%- endmacro %}
