{#-
    An incremental state with one row per customer (macro customer_state), built from its query
    run once per part of the customers (macro in_customer_part), each part joining and
    aggregating only its customers, so the query's working memory is that of one part.

    A run whose pre-hook left the side table `<model>__touched` (the customers whose rows it
    deleted: an incremental night) inserts the query's rows for them into the table, in parts
    counted by that table. Any other run (the first, a rebuild, a full refresh, or a model
    without the state's hooks) builds a new table in parts, part 0 creating it and the others
    inserted into it, which then replaces the old one, all in one transaction. dbt's
    is_incremental knows this materialization (is_incremental.sql).

    config: parts_sized_by (required), the name of a model this one refs, whose rows count the
    customers of a whole build; rows_per_part (default: var customers_per_build_part), how many
    of them one part holds. The number of parts is ceil(rows / rows_per_part), at least 1.
-#}
{% materialization state_in_parts, adapter="duckdb" %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type="table") -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set backup_relation = make_backup_relation(target_relation, "table") -%}
    {%- set grant_config = config.get("grants") -%}

    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}

    {%- do run_hooks(pre_hooks, inside_transaction=False) -%}
    {#- BEGIN happens here (the first hook inside the transaction) -#}
    {%- do run_hooks(pre_hooks, inside_transaction=True) -%}

    {%- set touched = state_side_table('touched') -%}
    {%- set incremental = existing_relation is not none
        and state_side_table_exists('touched') -%}
    {%- if incremental -%}
        {%- call statement("main") -%}
            {{ customer_parts_sql(target_relation, compiled_code, customer_parts(touched)) }}
        {%- endcall -%}
    {%- else -%}
        {%- set parts = customer_parts(ref(config.require("parts_sized_by"))) -%}
        {%- call statement("main") -%}
            {{ customer_parts_sql(intermediate_relation, compiled_code, parts, create=true) }}
        {%- endcall -%}
        {%- if existing_relation is not none -%}
            {{ adapter.rename_relation(existing_relation, backup_relation) }}
        {%- endif -%}
        {{ adapter.rename_relation(intermediate_relation, target_relation) }}
        {%- do create_indexes(target_relation) -%}
    {%- endif -%}

    {%- do run_hooks(post_hooks, inside_transaction=True) -%}
    {%- do apply_grants(
        target_relation, grant_config,
        should_revoke=should_revoke(existing_relation, full_refresh_mode=not incremental)
    ) -%}
    {%- do persist_docs(target_relation, model) -%}
    {#- COMMIT happens here -#}
    {%- do adapter.commit() -%}
    {{ drop_relation_if_exists(backup_relation) }}
    {%- do run_hooks(post_hooks, inside_transaction=False) -%}

    {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}


{#- How many parts of at most config rows_per_part (default: var customers_per_build_part)
    customers cover the rows of `counted` (a relation or a subquery), at least 1. -#}
{% macro customer_parts(counted) -%}
    {%- set rows_per_part = config.get("rows_per_part") or var("customers_per_build_part") -%}
    {%- set result = run_query("select count(*) from " ~ counted) -%}
    {%- set rows = result.columns[0].values()[0] if execute else 0 -%}
    {%- set parts = [((rows | int) + (rows_per_part | int) - 1) // (rows_per_part | int), 1]
        | max -%}
    {{ log(model.config.materialized ~ ": " ~ this ~ " in " ~ parts ~ " part(s) of " ~ rows
        ~ " rows of " ~ counted, info=False) }}
    {{ return(parts) }}
{%- endmacro %}


{#- `sql` run once per part (the DuckDB variables macro in_customer_part reads), each inserted
    into `relation`; with `create`, the first part creates it. -#}
{% macro customer_parts_sql(relation, sql, parts, create=false) -%}
    set variable segments_customer_parts = {{ parts }};
    {%- for part in range(parts) %}
    set variable segments_customer_part = {{ part }};
    {%- if create and loop.first %}
    create table {{ relation }} as (
        {{ sql }}
    );
    {%- else %}
    insert into {{ relation }} by name (
        {{ sql }}
    );
    {%- endif %}
    {%- endfor %}
    reset variable segments_customer_part;
    reset variable segments_customer_parts
{%- endmacro %}
