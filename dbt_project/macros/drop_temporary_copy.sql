{#-
    Post-hook of every model: an incremental run's temporary copy of the new rows dropped as soon
    as the model has inserted them. dbt-duckdb leaves it for the end of the connection, and with
    keep_open (profiles.yml) the connection lasts the whole build, so each incremental model's
    copy (for a mart, a slice of every customer) stayed in memory for the rest of the build: at
    10 million customers the next night ran out of DuckDB's 2 GB in a later model.
-#}
{% macro drop_temporary_copy() %}
    {%- if execute and is_incremental() -%}
        {%- set copies = run_query(
            "select table_name from duckdb_tables() where temporary"
            ~ " and starts_with(table_name, '" ~ this.identifier ~ "__dbt_tmp')"
        ) -%}
        {%- for copy in copies.rows -%}
            {%- do run_query('drop table if exists "' ~ copy[0] ~ '"') -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
