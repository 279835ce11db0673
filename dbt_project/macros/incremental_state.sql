{#-
    The ledger of the incremental state models (macros latest_known_copies, aggregated_state):
    intermediate.incremental_state_ledger, one marker row per model (landed_date null: the as-of
    date the state holds, the fingerprint of the code it was built with, how many keys the run
    recomputed, null when it rebuilt the state, and the dbt invocation that built it and the one
    before), plus, for the models read from landing partitions, one row per partition taken with
    its load time. A run deletes the model's rows and writes an in-progress marker (no as-of
    date) in its pre-hook, and completes the marker in its post-hook: a run that stops in
    between leaves a marker that makes the next run rebuild.
-#}
{% macro state_ledger() -%}
    intermediate.incremental_state_ledger
{%- endmacro %}


{#- on-run-start -#}
{% macro create_state_ledger() -%}
    create schema if not exists intermediate;
    create table if not exists {{ state_ledger() }} (
        model_name varchar,
        as_of_date date,
        landed_date date,
        loaded_at timestamp,
        fingerprint varchar,
        changed_keys bigint,
        invocation_id varchar,
        previous_invocation_id varchar
    )
{%- endmacro %}


{#- A table beside the model's own that its runs keep (`changes`: the keys recomputed by the
    last run, `replaced`: the rows it deleted, `touched`: the groups it recomputed). -#}
{% macro state_side_table(kind, model_name=none) -%}
    {{ this.schema }}."{{ model_name or this.identifier }}__{{ kind }}"
{%- endmacro %}


{#- The marker row of `model_name` (as_of_date, fingerprint, changed_keys, invocation_id,
    previous_invocation_id), or none. -#}
{% macro state_marker(model_name) -%}
    {%- set result = run_query(
        "select cast(as_of_date as varchar) as as_of_date, fingerprint, changed_keys, invocation_id, previous_invocation_id "
        ~ "from " ~ state_ledger() ~ " where model_name = '" ~ model_name
        ~ "' and landed_date is null"
    ) -%}
    {{ return(result.rows[0] if result.rows | length > 0 else none) }}
{%- endmacro %}


{#- What the state was built with besides its rows: the model's code and the vars the staging
    rules read (a change makes the next run rebuild the state), and a version of the state
    logic (raise it when the macros of the state models change). -#}
{% macro state_fingerprint() -%}
    {%- if not execute -%}
        {{ return('parsing') }}
    {%- endif -%}
    {{ return(local_md5([
        'state logic 1',
        graph.nodes[model.unique_id].raw_code,
        var('max_valid_order_amount') | string,
    ] | join('|'))) }}
{%- endmacro %}


{% macro state_marker_in_progress(changed_keys_sql, previous_marker) -%}
    delete from {{ state_ledger() }} where model_name = '{{ this.identifier }}';
    insert into {{ state_ledger() }}
        (model_name, changed_keys, invocation_id, previous_invocation_id)
    select
        '{{ this.identifier }}',
        {{ changed_keys_sql }},
        '{{ invocation_id }}',
        {{ state_quoted(previous_marker.invocation_id if previous_marker is not none else none) }}
{%- endmacro %}


{% macro state_marker_done() -%}
    update {{ state_ledger() }}
    set as_of_date = {{ as_of_date() }}, fingerprint = '{{ state_fingerprint() }}'
    where model_name = '{{ this.identifier }}' and landed_date is null
{%- endmacro %}


{#- A SQL string literal of `value` (an id), or null. -#}
{% macro state_quoted(value) -%}
    {{- "'" ~ value ~ "'" if value is not none else 'null' -}}
{%- endmacro %}


{#- The argument list of a hook's macro call, as jinja source (the hook is rendered later). -#}
{% macro state_hook_arguments(arguments) -%}
    {{- return('(' ~ (arguments | map('tojson') | join(', ')) ~ ')') -}}
{%- endmacro %}
