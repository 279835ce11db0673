{#-
    The ledger of the incremental state models (macros latest_known_copies, aggregated_state):
    intermediate.incremental_state_ledger, one marker row per model (landed_date null: the as-of
    date the state holds, the fingerprint of the code it was built with, how many keys the run
    recomputed, null when it rebuilt the state, the dbt invocation that built it and the one
    before, the rows the run kept (those it did not recompute) and the last invocation after
    which the state passed its uniqueness tests), plus, for the models read from landing
    partitions, one row per partition taken with its load time. A run deletes the model's rows
    and writes an in-progress marker (no as-of date) in its pre-hook, and completes the marker
    in its post-hook: a run that stops in between leaves a marker that makes the next run
    rebuild.
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
        previous_invocation_id varchar,
        kept_rows bigint,
        tested_invocation_id varchar
    );
    alter table {{ state_ledger() }} add column if not exists kept_rows bigint;
    alter table {{ state_ledger() }} add column if not exists tested_invocation_id varchar
{%- endmacro %}


{#- A table beside the model's own that its runs keep (`changes`: the keys recomputed by the
    last run, `replaced`: the rows it deleted, `touched`: the groups it recomputed). -#}
{% macro state_side_table(kind, model_name=none) -%}
    {{ this.schema }}."{{ model_name or this.identifier }}__{{ kind }}"
{%- endmacro %}


{#- In a pre-hook: the rows of the state that match `condition` saved as `<model>__replaced`
    (what the night recomputes, as they were), then deleted. The rows are found once: the
    delete takes the saved rows' rowids instead of matching `condition` again, which is a
    second scan of the whole table joined to the night's keys (0.2-0.3 s of each state model's
    next night at 1M customers). The rowids are read and used inside the pre-hook's one
    transaction, where they cannot move, and dropped from the copy. -#}
{% macro replace_state_rows(condition) -%}
    {%- set replaced = state_side_table('replaced') -%}
    create table {{ replaced }} as
    select *, rowid as replaced_rowid from {{ this }}
    where {{ condition }};
    delete from {{ this }} where rowid in (select replaced_rowid from {{ replaced }});
    alter table {{ replaced }} drop column replaced_rowid
{%- endmacro %}


{#- Whether this model's side table `kind` exists: the hooks write the side tables outside dbt's
    relation cache, so the catalog is asked (false while dbt parses). -#}
{% macro state_side_table_exists(kind) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set found = run_query(
        "select 1 from information_schema.tables where table_schema = '" ~ this.schema
        ~ "' and table_name = '" ~ this.identifier ~ "__" ~ kind ~ "'"
    ) -%}
    {{ return(found.rows | length > 0) }}
{%- endmacro %}


{#- The marker row of `model_name` (as_of_date, fingerprint, changed_keys, invocation_id,
    previous_invocation_id, kept_rows, tested_invocation_id), or none. -#}
{% macro state_marker(model_name) -%}
    {%- set result = run_query(
        "select cast(as_of_date as varchar) as as_of_date, fingerprint, changed_keys, "
        ~ "invocation_id, previous_invocation_id, kept_rows, tested_invocation_id "
        ~ "from " ~ state_ledger() ~ " where model_name = '" ~ model_name
        ~ "' and landed_date is null"
    ) -%}
    {{ return(result.rows[0] if result.rows | length > 0 else none) }}
{%- endmacro %}


{#- What the state was built with besides its rows: the model's code and the vars the staging
    rules read (a change makes the next run rebuild the state), a version of the state logic
    (raise it when the macros of the state models change), and `extra`: what else a model's
    rows depend on (identity resolution's states give the SQL of their match keys or their
    vars), passed the same to state_marker_done. -#}
{% macro state_fingerprint(extra='') -%}
    {%- if not execute -%}
        {{ return('parsing') }}
    {%- endif -%}
    {{ return(local_md5([
        'state logic 2',
        graph.nodes[model.unique_id].raw_code,
        var('max_valid_order_amount') | string,
    ] | join('|') ~ extra)) }}
{%- endmacro %}


{#- Called by a pre-hook after it deleted what the run recomputes: on an incremental run (the
    changed keys counted) the rows left are the ones kept. -#}
{% macro state_marker_in_progress(changed_keys_sql, previous_marker) -%}
    delete from {{ state_ledger() }} where model_name = '{{ this.identifier }}';
    insert into {{ state_ledger() }} (
        model_name,
        changed_keys,
        invocation_id,
        previous_invocation_id,
        kept_rows,
        tested_invocation_id
    )
    select
        '{{ this.identifier }}',
        {{ changed_keys_sql }},
        '{{ invocation_id }}',
        {{ state_quoted(previous_marker.invocation_id if previous_marker is not none else none) }},
        {{ '(select count(*) from ' ~ this ~ ')' if changed_keys_sql != 'null' else 'null' }},
        {{ state_quoted(
            previous_marker.tested_invocation_id if previous_marker is not none else none
        ) }}
{%- endmacro %}


{#- The end of a state model's pre-hook, after the incremental run's own deletes: on a rebuild
    of an existing table, say why and empty it; then the in-progress marker, with the keys the
    incremental run recomputes counted in the side table `counted` (null on a rebuild). -#}
{% macro state_pre_hook_end(rebuild_reason, counted, marker, rebuilt_from='') -%}
    {% if is_incremental() and rebuild_reason is not none -%}
        {{ log('Rebuilding ' ~ this ~ rebuilt_from ~ ': ' ~ rebuild_reason, info=true) }}
        delete from {{ this }};
    {%- endif %}
    {{ state_marker_in_progress(
        '(select count(*) from ' ~ counted ~ ')'
        if is_incremental() and rebuild_reason is none else 'null',
        marker,
    ) }}
{%- endmacro %}


{% macro state_marker_done(extra='') -%}
    update {{ state_ledger() }}
    set as_of_date = {{ as_of_date() }}, fingerprint = '{{ state_fingerprint(extra) }}'
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


{#-
    The rows of the state model `relation` that this build recomputed, as a condition on
    `column` (its key, macro latest_known_copies, or its group column, macro aggregated_state),
    or none when every row must be looked at. A data test that declares `meta: {changed_rows_key:
    <column>}` reads only these rows (macro get_where_subquery), as a mart's tests read only the
    night's slice. The other rows are the ones the run kept, as they were after the run before,
    which passed the same test; so the condition is given only when this build updated the
    state incrementally (not a rebuild) and the run before was tested clean
    (tested_invocation_id, macro record_tested_states): after a rebuild, a failed or skipped test
    or an interrupted run the test reads the whole table. And should the run have inserted a row
    outside its keys (the rows outside them are no longer the ones it kept: kept_rows), the
    condition holds for every row, and the test reads the whole table too.
-#}
{% macro state_rows_recomputed(relation, column) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marker = state_marker(relation.identifier) -%}
    {%- if marker is none
        or marker.as_of_date is none
        or marker.changed_keys is none
        or marker.kept_rows is none
        or marker.invocation_id != invocation_id
        or marker.previous_invocation_id is none
        or marker.tested_invocation_id != marker.previous_invocation_id -%}
        {{ return(none) }}
    {%- endif -%}
    {#- the side tables are written by the hooks, outside dbt's relation cache -#}
    {%- set sides = run_query(
        "select table_name from information_schema.tables where table_schema = '"
        ~ relation.schema ~ "' and table_name in ('" ~ relation.identifier ~ "__changes', '"
        ~ relation.identifier ~ "__touched')"
    ) -%}
    {%- if sides.rows | length != 1 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set side = relation.schema ~ '."' ~ sides.rows[0][0] ~ '"' -%}
    {#- the rows the pre-hook deleted and the run inserted again -#}
    {%- set recomputed = 'coalesce(' ~ in_touched_groups(column, side) ~ ', false)' -%}
    {{ return(
        '(' ~ recomputed ~ ' or (select count(*) from ' ~ relation ~ ' where not ' ~ recomputed
        ~ ') <> ' ~ marker.kept_rows ~ ')'
    ) }}
{%- endmacro %}


{#- on-run-end: each state model built by this invocation whose tests that declare
    `changed_rows_key` all ran and passed is marked tested (tested_invocation_id), so that the
    next build may test only the rows it recomputes. -#}
{% macro record_tested_states(results) -%}
    {%- set verdicts = {} -%}
    {%- for result in results if result.node.resource_type == 'test' -%}
        {%- set meta = result.node.config.meta or {} -%}
        {%- if meta.get('changed_rows_key') and result.node.attached_node -%}
            {%- set name = result.node.attached_node.split('.')[-1] -%}
            {%- do verdicts.update(
                {name: verdicts.get(name, true) and (result.status | string) == 'pass'}
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set passed = [] -%}
    {%- for name, ok in verdicts.items() if ok -%}
        {%- do passed.append("'" ~ name ~ "'") -%}
    {%- endfor -%}
    {%- if passed -%}
        update {{ state_ledger() }}
        set tested_invocation_id = '{{ invocation_id }}'
        where
            model_name in ({{ passed | join(', ') }})
            and landed_date is null
            and as_of_date is not null
            and invocation_id = '{{ invocation_id }}'
    {%- else -%}
        select 1
    {%- endif %}
{%- endmacro %}
