{#-
    The start of an incremental state model that aggregates the rows of a known-copies state
    (macro latest_known_copies, or int_orders_attributed, whose macro attributed_state keeps the
    same side tables) by groups: `upstream_model`'s rows as the CTE `rows_to_aggregate`, the model
    adds its aggregation over them, grouped by `group_column` (and maybe more).

    A night recomputes only the groups whose rows its upstream changed: the `group_column` values
    of the rows the upstream replaced (`<upstream>__replaced`) and of the rows it inserted for its
    changed keys (`<upstream>__changes`, keyed by `upstream_key`), saved as `<model>__touched`;
    their rows are saved as `<model>__replaced`, deleted and aggregated again. It rebuilds from
    the whole upstream when it has no ledger, its code changed, or it did not see the upstream's
    every run (the upstream rebuilt, did not run in this invocation, or ran in one without this
    model): macro aggregated_state_rebuild_reason.
-#}
{% macro aggregated_state(upstream_model, upstream_key, group_column) %}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook=["{{ aggregated_state_pre_hook" ~ state_hook_arguments(
        [upstream_model, upstream_key, group_column]
    ) ~ " }}"],
    post_hook=["{{ state_marker_done() }}"],
) }}

with

rows_to_aggregate as (

    select * from {{ ref(upstream_model) }} -- noqa: LT02
    {{ where_in_touched_groups(upstream_model, group_column) }}

)

{% endmacro %}


{#- On an incremental run: the condition that keeps the groups this night's changes touched. -#}
{% macro where_in_touched_groups(upstream_model, group_column) -%}
    {%- if is_incremental() and aggregated_state_rebuild_reason(upstream_model) is none -%}
        where {{ in_touched_groups(group_column) }}
    {%- endif -%}
{%- endmacro %}


{#- The rows whose group (or key) is in the side table `side` (default: this model's
    `__touched`), a null group included when the side table holds one; also how a data test
    reads the rows a night recomputed (macro state_rows_recomputed). -#}
{% macro in_touched_groups(group_column, side=none) -%}
    {%- set side = side or state_side_table('touched') -%}
    (
        {{ group_column }} in (select {{ group_column }} from {{ side }})
        or (
            {{ group_column }} is null
            and exists (
                select 1 from {{ side }}
                where {{ group_column }} is null
            )
        )
    )
{%- endmacro %}


{#- Why a state built on `upstream_model`'s changes rebuilds (a short text), or none; `extra` as
    in state_fingerprint. Also the rule of pii_similar_email_matches, built on the changes of
    pii_customer_match_keys. -#}
{% macro aggregated_state_rebuild_reason(upstream_model, extra='') -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marker = state_marker(this.identifier) -%}
    {%- set upstream = state_marker(upstream_model) -%}
    {%- if marker is none or marker.as_of_date is none -%}
        {{ return('no ledger of the state (first or interrupted run)') }}
    {%- elif marker.fingerprint != state_fingerprint(extra) -%}
        {{ return('the model\'s code or vars changed') }}
    {%- elif upstream is none or upstream.invocation_id != invocation_id -%}
        {{ return(upstream_model ~ ' was not built in this run') }}
    {%- elif upstream.changed_keys is none -%}
        {{ return(upstream_model ~ ' was rebuilt') }}
    {%- elif upstream.previous_invocation_id != marker.invocation_id -%}
        {{ return('a run of ' ~ upstream_model ~ ' was not taken in here') }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{% macro aggregated_state_pre_hook(upstream_model, upstream_key, group_column) -%}
    {%- set rebuild_reason = aggregated_state_rebuild_reason(upstream_model) -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    drop table if exists {{ state_side_table('touched') }};
    drop table if exists {{ state_side_table('replaced') }};
    {% if is_incremental() and rebuild_reason is none -%}
        create table {{ state_side_table('touched') }} as
        select {{ group_column }} from {{ state_side_table('replaced', upstream_model) }}
        union
        select {{ group_column }} from {{ ref(upstream_model) }}
        where {{ upstream_key }} in (
            select {{ upstream_key }} from {{ state_side_table('changes', upstream_model) }}
        );
        {{ replace_touched_groups(group_column) }};
    {%- endif %}
    {{ state_pre_hook_end(
        rebuild_reason, state_side_table('touched'), marker, ' from ' ~ upstream_model
    ) }}
{%- endmacro %}


{#- The rows of the groups in `__touched` saved as `<model>__replaced` (what they were before
    tonight: the per-customer states built on this one find their old owners there, macro
    customer_state), then deleted. -#}
{% macro replace_touched_groups(group_column) -%}
    {{ replace_state_rows(in_touched_groups(group_column)) }}
{%- endmacro %}
