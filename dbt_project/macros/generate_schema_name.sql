{#-
    Custom schemas are used as they are (`staging`, `pii`, `intermediate`, `marts`, `seeds`)
    instead of dbt's default `<target schema>_<custom schema>`: the schema names are part of the
    data contract.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
