{#-
    The run's as-of date (YYYY-MM-DD): the dbt var `as_of_date` when given (`dbt build --vars
    '{as_of_date: "2026-06-30"}'`, and a unit test's overrides), otherwise the environment variable
    SEGMENTS_AS_OF_DATE, which is how the pipeline passes it (transform.dbt_build).

    Why an environment variable: dbt discards its saved parse (partial parsing) whenever the
    `--vars` differ from the last run's, so a date passed as a var costs every night a full parse.
    Nothing in the manifest depends on the date: while parsing (execute is false) this returns a
    placeholder without reading either, and the marts' tests select their slice at run time
    (get_where_subquery). Any run without a date fails here with a clear message (first in the
    on-run-start hook).
-#}
{% macro as_of_date_text() -%}
    {%- if not execute -%}
        {{ return('1970-01-01') }}
    {%- endif -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- set value = env_var('SEGMENTS_AS_OF_DATE', '') -%}
    {%- endif -%}
    {%- set value = value | string | trim -%}
    {%- if value == '' -%}
        {{ exceptions.raise_compiler_error(
            "The as-of date is required (YYYY-MM-DD): the dbt var 'as_of_date', e.g. "
            ~ "dbt build --vars '{as_of_date: \"2026-06-30\"}', or the environment variable "
            ~ "SEGMENTS_AS_OF_DATE"
        ) }}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value) -%}
        {{ exceptions.raise_compiler_error(
            "The as-of date (dbt var 'as_of_date' or SEGMENTS_AS_OF_DATE) must be a date "
            ~ "YYYY-MM-DD, got '" ~ value ~ "'"
        ) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}


{#- The run's as-of date as a SQL date literal. -#}
{% macro as_of_date() -%}
    date '{{ as_of_date_text() }}'
{%- endmacro %}
