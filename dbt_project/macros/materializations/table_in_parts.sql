{#-
    A table rebuilt every run, like dbt's table materialization, but from its query run once per
    part of the customers (macro in_customer_part): part 0 creates the new table, the others are
    inserted into it, then it replaces the old one, all in one transaction. Each part joins and
    aggregates only its customers, so the query's working memory is that of one part.

    config: parts_sized_by (required), the name of a model this one refs, whose rows count the
    customers; rows_per_part (default: var customers_per_build_part), how many of them one part
    holds. The number of parts is ceil(rows / rows_per_part), at least 1.
-#}
{% materialization table_in_parts, adapter="duckdb" %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type="table") -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set backup_relation = make_backup_relation(target_relation, "table") -%}
    {%- set grant_config = config.get("grants") -%}
    {%- set rows_per_part = config.get("rows_per_part") or var("customers_per_build_part") -%}

    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}

    {%- do run_hooks(pre_hooks, inside_transaction=False) -%}
    {#- BEGIN happens here (the first hook inside the transaction) -#}
    {%- do run_hooks(pre_hooks, inside_transaction=True) -%}

    {%- set sized_by = ref(config.require("parts_sized_by")) -%}
    {%- set counted = run_query("select count(*) from " ~ sized_by) -%}
    {%- set rows = counted.columns[0].values()[0] if execute else 0 -%}
    {%- set parts = [((rows | int) + (rows_per_part | int) - 1) // (rows_per_part | int), 1]
        | max -%}
    {{ log("table_in_parts: " ~ this ~ " in " ~ parts ~ " part(s) of " ~ rows ~ " rows of "
        ~ sized_by, info=False) }}

    {%- call statement("main") -%}
        set variable segments_customer_parts = {{ parts }};
        set variable segments_customer_part = 0;
        create table {{ intermediate_relation }} as (
            {{ compiled_code }}
        );
        {%- for part in range(1, parts) %}
        set variable segments_customer_part = {{ part }};
        insert into {{ intermediate_relation }} by name (
            {{ compiled_code }}
        );
        {%- endfor %}
        reset variable segments_customer_part;
        reset variable segments_customer_parts
    {%- endcall -%}

    {%- if existing_relation is not none -%}
        {{ adapter.rename_relation(existing_relation, backup_relation) }}
    {%- endif -%}
    {{ adapter.rename_relation(intermediate_relation, target_relation) }}

    {%- do create_indexes(target_relation) -%}
    {%- do run_hooks(post_hooks, inside_transaction=True) -%}
    {%- do apply_grants(
        target_relation, grant_config,
        should_revoke=should_revoke(existing_relation, full_refresh_mode=True)
    ) -%}
    {%- do persist_docs(target_relation, model) -%}
    {#- COMMIT happens here -#}
    {%- do adapter.commit() -%}
    {{ drop_relation_if_exists(backup_relation) }}
    {%- do run_hooks(post_hooks, inside_transaction=False) -%}

    {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}
