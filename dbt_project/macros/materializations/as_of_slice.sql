{#-
    The marts' materialization: a table holding one slice per as-of date, where a run replaces
    its own slice (the rows whose as_of_date is the run's) and leaves every other date untouched.

    The first run creates the table from the model's query (the contract enforced, as dbt's table
    materialization does). Later runs, in one transaction: check the query's columns against the
    contract, add the columns the contract gained (on_schema_change), delete the run's slice and
    insert the query's rows straight into the table.

    dbt's incremental materialization first copies the new rows into a temporary table and inserts
    from there: for a mart the copy is a slice of every customer, which at 10 million customers
    did not fit beside the model's own query in DuckDB's 2 GB. Here the only temporary relation is
    a view of the query, used to read its columns and dropped before the commit.

    config: on_schema_change (ignore, append_new_columns, sync_all_columns or fail; with an
    enforced contract dbt allows append_new_columns or fail). full_refresh is not supported: the
    history of slices must survive it (drop the table to rebuild it).
-#}
{% materialization as_of_slice, adapter="duckdb" %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type="table") -%}
    {%- set on_schema_change = incremental_validate_on_schema_change(
        config.get("on_schema_change"), default="ignore"
    ) -%}
    {%- set grant_config = config.get("grants") -%}

    {%- if existing_relation is not none and not existing_relation.is_table -%}
        {{ exceptions.raise_compiler_error(
            this ~ " is a " ~ existing_relation.type ~ ", not a table of as-of slices: drop it"
            ~ " and run the dates again to rebuild it"
        ) }}
    {%- endif -%}

    {%- do run_hooks(pre_hooks, inside_transaction=False) -%}
    {#- BEGIN happens here (the first hook inside the transaction) -#}
    {%- do run_hooks(pre_hooks, inside_transaction=True) -%}

    {%- if existing_relation is none -%}
        {%- set build_sql = create_table_as(False, target_relation, compiled_code) -%}
    {%- else -%}
        {%- if config.get("contract").enforced -%}
            {%- do get_assert_columns_equivalent(compiled_code) -%}
        {%- endif -%}
        {%- set query_columns = make_temp_relation(target_relation, "__dbt_columns").incorporate(
            type="view"
        ) -%}
        {%- call statement("query_columns") -%}
            create temporary view {{ query_columns }} as (
                {{ compiled_code }}
            )
        {%- endcall -%}
        {%- set dest_columns = process_schema_changes(
            on_schema_change, query_columns, existing_relation
        ) or adapter.get_columns_in_relation(existing_relation) -%}
        {%- set column_list = get_quoted_csv(dest_columns | map(attribute="name")) -%}
        {%- do run_query("drop view " ~ query_columns) -%}
        {%- set build_sql -%}
            delete from {{ target_relation }} where as_of_date = {{ as_of_date() }};
            insert into {{ target_relation }} ({{ column_list }})
            select {{ column_list }} from (
                {{ compiled_code }}
            ) as as_of_slice
        {%- endset -%}
    {%- endif -%}

    {%- call statement("main") -%}
        {{ build_sql }}
    {%- endcall -%}

    {%- if existing_relation is none -%}
        {%- do create_indexes(target_relation) -%}
    {%- endif -%}
    {%- do apply_grants(
        target_relation, grant_config,
        should_revoke=should_revoke(existing_relation, full_refresh_mode=False)
    ) -%}
    {%- do persist_docs(target_relation, model) -%}

    {%- do run_hooks(post_hooks, inside_transaction=True) -%}
    {#- COMMIT happens here -#}
    {%- do adapter.commit() -%}
    {%- do run_hooks(post_hooks, inside_transaction=False) -%}

    {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}
