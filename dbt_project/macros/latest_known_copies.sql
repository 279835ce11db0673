{#-
    The body of an incremental state model of the copy landed last of each row known on the as-of
    date (int_orders_deduplicated, int_web_events_deduplicated, int_email_events_deduplicated),
    up to its `deduplicated` CTE: the model adds its `final`.

    A row is known on the as-of date when it landed by then and its time (`time_column`) is before
    the end of the as-of day (`keep_null_time`: a row without a readable time is kept; without a
    `time_column`, every row landed by then is known); of the known copies of one `key` the first
    in `order_by` (the model's own preference, e.g. the record updated last; may be empty) wins,
    then the copy landed last (macro landed_last): the latest landing partition, then the last
    file by name, then the later line of that file (an export that appends an updated copy of a
    row), then `then_by` (may be empty: for rows loaded before raw kept their line, which have
    none). The line makes the choice deterministic: two copies of one id in one file no longer
    tie (the raw gate also warns about them, expectations.suites).

    Incremental state (macro incremental_state): the table holds the rows known on the as-of date
    of its ledger. A night recomputes only the keys its changes can touch (macro changed_keys):
    the keys of the landing partitions new, reloaded or retracted since the ledger, and of the
    rows that became known because the as-of date moved; it deletes them (keeping the deleted rows
    in `<model>__replaced` and the keys in `<model>__changes` for the aggregated states built on
    this one) and inserts their latest known copy again. Otherwise it rebuilds from history
    (macro known_copies_rebuild_reason).
-#}
{% macro latest_known_copies(
    staged_model, base_model, key, time_column, order_by='', keep_null_time=false, then_by=''
) %}
{%- set time_column = time_column or '' %}
{%- set order_by = order_by or '' %}
{#- the model's own order, then the landing order every state model shares -#}
{%- set copy_order = (order_by ~ ', ' if order_by else '') ~ landed_last()
    ~ (', ' ~ then_by if then_by else '') %}

{#- the hooks are rendered when they run, with the ledger of that moment (a model's config is
    read when the project is parsed) -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook=["{{ known_copies_pre_hook" ~ state_hook_arguments(
        [staged_model, base_model, key, time_column, order_by, keep_null_time]
    ) ~ " }}"],
    post_hook=["{{ known_copies_post_hook" ~ state_hook_arguments(
        [staged_model, base_model, key, time_column, order_by, keep_null_time]
    ) ~ " }}"],
) }}

-- depends_on: {{ ref(base_model) }}

with

copies as (

    select * from {{ ref(staged_model) }}

),

known_by_as_of_date as (

    -- as-of rule: only what had landed by the as-of date, and rows whose time is after the
    -- as-of day are not known yet
    select * from copies -- noqa: LT02
    where
        {{ known_on_as_of_date(time_column, keep_null_time) }} -- noqa: LT02
        {{ in_changed_keys(key) }}

),

deduplicated as (

    -- one row per key: the copy that landed last (a re-sent row replaces the earlier one, a
    -- later line of the same file an earlier one)
    select * from known_by_as_of_date
    where {{ key }} is not null
    qualify row_number() over (partition by {{ key }} order by {{ copy_order }}) = 1

)

{% endmacro %}


{#- The order of the copies of one id, the one landed last first: the latest landing partition,
    the last file by name, the later line of that file (staging's `source_line`, the loader's
    raw `_line_number`; null, last, for rows loaded before the loader wrote it). The one rule of
    every state model of latest copies. -#}
{% macro landed_last() -%}
    landed_date desc, source_file desc, source_line desc nulls last
{%- endmacro %}


{#- On an incremental run: the condition that keeps this night's changed keys only. -#}
{% macro in_changed_keys(key) -%}
    {%- if is_incremental() and known_copies_rebuild_reason() is none -%}
        and {{ key }} in (select {{ key }} from {{ state_side_table('changes') }})
    {%- endif -%}
{%- endmacro %}


{% macro known_on_as_of_date(time_column, keep_null_time) -%}
    {%- set unknown_time = time_column ~ ' is null or ' if keep_null_time else '' %}
    landed_date <= {{ as_of_date() }}
    {%- if time_column %}
        and ({{ unknown_time }}{{ time_column }} < {{ as_of_date() }} + interval 1 day)
    {%- endif %}
{%- endmacro %}


{#- Why this run rebuilds the state from history (a short text), or none: no ledger (first run,
    or a run interrupted between its hooks), a backfill (the as-of date is before the ledger's),
    or a change of the model's code or vars (fingerprint). -#}
{% macro known_copies_rebuild_reason() -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marker = state_marker(this.identifier) -%}
    {%- if marker is none or marker.as_of_date is none -%}
        {{ return('no ledger of the state (first or interrupted run)') }}
    {%- endif -%}
    {%- set current_as_of = as_of_date_text() -%}
    {%- if (marker.as_of_date | string) > current_as_of -%}
        {{ return('the as-of date ' ~ current_as_of ~ ' is before the state\'s '
                  ~ marker.as_of_date) }}
    {%- endif -%}
    {%- if marker.fingerprint != state_fingerprint() -%}
        {{ return('the model\'s code or vars changed') }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{#- The keys whose latest known copy may differ from the state's: every key of a landing
    partition (landed by the as-of date) that is new, reloaded or gone since the ledger, in raw
    now or in the state, and (with a `time_column`) the keys of copies that became known because
    the as-of date moved (time after the previous as-of day, landed earlier). -#}
{% macro changed_keys(staged_relation, base_relation, key, time_column, previous_as_of_date) %}
    {%- set became_known = (
        'landed_date <= ' ~ as_of_date()
        ~ ' and ' ~ time_column ~ ' >= ' ~ previous_as_of_date ~ ' + interval 1 day'
        ~ ' and ' ~ time_column ~ ' < ' ~ as_of_date() ~ ' + interval 1 day'
    ) if time_column else 'false' %}
    with

    landed_now as (

        select
            landed_date,
            max(loaded_at) as loaded_at
        from {{ base_relation }}
        where landed_date <= {{ as_of_date() }}
        group by landed_date

    ),

    taken as (

        select
            landed_date,
            loaded_at
        from {{ state_ledger() }}
        where model_name = '{{ this.identifier }}' and landed_date is not null

    ),

    changed_partitions as (

        select coalesce(landed_now.landed_date, taken.landed_date) as landed_date
        from landed_now
        full outer join taken
            on landed_now.landed_date = taken.landed_date
        where landed_now.loaded_at is distinct from taken.loaded_at

    ),

    keys as (

        select {{ key }} from {{ staged_relation }}
        where landed_date in (select landed_date from changed_partitions)
        union
        select {{ key }} from {{ this }}
        where landed_date in (select landed_date from changed_partitions)
        union
        select {{ key }} from {{ staged_relation }}
        where {{ became_known }}

    )

    select * from keys
    where {{ key }} is not null
{% endmacro %}


{#- Rendered once, so that every statement acts on one decision: rebuild (empty the table) or
    delete the changed keys (saving them and the rows deleted); then the ledger's marker of a run
    in progress. -#}
{% macro known_copies_pre_hook(
    staged_model, base_model, key, time_column, order_by, keep_null_time
) -%}
    {%- set rebuild_reason = known_copies_rebuild_reason() -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    drop table if exists {{ state_side_table('changes') }};
    drop table if exists {{ state_side_table('replaced') }};
    {% if is_incremental() and rebuild_reason is none -%}
        create table {{ state_side_table('changes') }} as
        {{ changed_keys(
            ref(staged_model),
            ref(base_model),
            key,
            time_column,
            "date '" ~ marker.as_of_date ~ "'",
        ) }};
        {{ replace_changed_keys(key) }};
    {%- endif %}
    {{ state_pre_hook_end(rebuild_reason, state_side_table('changes'), marker, ' from history') }}
{%- endmacro %}


{#- In a pre-hook, after the run's keys were saved in `<model>__changes`: the rows of those keys
    kept as `<model>__replaced` (for the aggregated states built on this one) and deleted. -#}
{% macro replace_changed_keys(key) -%}
    {{ replace_state_rows(
        key ~ ' in (select ' ~ key ~ ' from ' ~ state_side_table('changes') ~ ')'
    ) }}
{%- endmacro %}


{#- The ledger of what the state now holds: the landing partitions it took (landed by the as-of
    date, with their load times) and the marker's as-of date. -#}
{% macro known_copies_post_hook(
    staged_model, base_model, key, time_column, order_by, keep_null_time
) -%}
    insert into {{ state_ledger() }} (model_name, landed_date, loaded_at)
    select
        '{{ this.identifier }}',
        landed_date,
        max(loaded_at)
    from {{ ref(base_model) }}
    where landed_date <= {{ as_of_date() }}
    group by landed_date;
    {{ state_marker_done() }}
{%- endmacro %}
