{#-
    The run's as-of date as a SQL date literal, from the required var `as_of_date` (YYYY-MM-DD).

    While parsing (execute is false) a placeholder keeps `dbt parse` and `dbt ls` usable without
    the var; any run fails here with a clear message (first in the on-run-start hook).
-#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "The dbt var 'as_of_date' is required (YYYY-MM-DD), e.g. "
                ~ "dbt build --vars '{as_of_date: \"2026-06-30\"}'"
            ) }}
        {%- endif -%}
        {%- set value = '1970-01-01' -%}
    {%- endif -%}
    {%- set value = value | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value) -%}
        {{ exceptions.raise_compiler_error(
            "The dbt var 'as_of_date' must be a date YYYY-MM-DD, got '" ~ value ~ "'"
        ) }}
    {%- endif -%}
    date '{{ value }}'
{%- endmacro %}
