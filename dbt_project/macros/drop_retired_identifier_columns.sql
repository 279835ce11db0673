{#-
    On run start: drops the identifier columns marts.customers had before identifiers moved to the
    pii schema (first_name, last_name, email, phone), so a warehouse built earlier keeps no names
    or addresses in the history of the mart. A no-op once they are gone or without the table.
-#}
{% macro drop_retired_identifier_columns() -%}
    {%- for column in ['first_name', 'last_name', 'email', 'phone'] %}
        alter table if exists marts.customers drop column if exists {{ column }};
    {%- endfor %}
{%- endmacro %}
