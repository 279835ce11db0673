{#-
    The rows a data test reads (dbt's get_where_subquery, overridden): the test's `where` config,
    as dbt applies it, with the placeholder __as_of_date__ replaced by the run's as-of date (macro
    as_of_date) when the test runs, and for a test on an incremental state model that declares
    `meta: {changed_rows_key: <column>}`, only the rows this build recomputed when the rest were
    tested before (macro state_rows_recomputed).

    The marts' tests select their slice with the placeholder (dbt_project.yml): a date written
    into the config would be rendered when dbt parses, so a reused parse (partial parsing) would
    test the slice of the night that parsed.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__as_of_date__', as_of_date()) -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set changed_rows_key = (config.get('meta') or {}).get('changed_rows_key') -%}
    {%- if changed_rows_key -%}
        {%- set recomputed = state_rows_recomputed(relation, changed_rows_key) -%}
        {%- if recomputed is not none -%}
            {%- do conditions.append(recomputed) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return(
            '(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery'
        ) -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}
