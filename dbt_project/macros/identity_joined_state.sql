{#-
    The start (the CTE `rows_to_join`) of an incremental state model that adds up, per group, the
    rows of an aggregated state (macro aggregated_state: keyed by source customer ids, its
    recomputed groups in `<upstream>__touched`) joined to tonight's identity map
    (int_web_sessions_aggregated: a session's events summed over their source ids, attached to
    the resolved customer). The model joins `rows_to_join` to int_customers_resolved on
    `source_column` and groups by `group_column`.

    A night recomputes only the groups whose rows or whose owner can have changed: the groups its
    upstream re-aggregated, and the groups with a row of a source id whose resolved customer is
    not the one it had when this model last ran (a merge, a split, a record gone, a first CRM
    record). For that the model keeps the identity map it was built with (`<model>__identity`,
    source id and resolved id, brought up to date by its post-hook), compared with tonight's
    (macro save_reidentified);
    being its own, it also covers a night the model did not run. The groups are saved as
    `<model>__touched`, their rows as `<model>__replaced` (macro replace_touched_groups), deleted
    and added up again. It rebuilds as an aggregated state does
    (macro aggregated_state_rebuild_reason), and when its saved map is missing.
-#}
{% macro identity_joined_state(upstream_model, group_column, source_column) %}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook=["{{ identity_joined_state_pre_hook" ~ state_hook_arguments(
        [upstream_model, group_column, source_column]
    ) ~ " }}"],
    post_hook=["{{ identity_joined_state_post_hook() }}"],
) }}

with

rows_to_join as (

    select * from {{ ref(upstream_model) }} -- noqa: LT02
    {{ where_in_identity_joined_groups(upstream_model, group_column) }}

)

{% endmacro %}


{#- Why a state that keeps its identity map rebuilds (a short text), or none: as an aggregated
    state on `upstream_model`, and when the map it kept is missing. -#}
{% macro identity_joined_state_rebuild_reason(upstream_model) -%}
    {%- set reason = aggregated_state_rebuild_reason(upstream_model) -%}
    {%- if reason is none and execute and is_incremental() -%}
        {%- if not state_side_table_exists('identity') -%}
            {%- set reason = 'no identity map of its last run' -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(reason) }}
{%- endmacro %}


{#- Tonight's identity map as an identity-joined state keeps it: each source id and its resolved
    customer (one part of the source ids while macro save_reidentified compares the maps in
    parts, all of them otherwise: macro in_customer_part). -#}
{% macro identity_map() -%}
    select source_customer_id, customer_id from {{ ref('int_customers_resolved') }}
    where {{ in_customer_part('source_customer_id') }}
{%- endmacro %}


{#- Pre-hook: the source ids whose row in the map the state kept at its last run
    (`<model>__identity`) differs from tonight's `map_sql` (re-attributed, gone, new to the map,
    or another value of `columns`), saved as `<model>__reidentified`: one row with the old
    resolved customer and one with the new, where there is one. Both maps hold one row per
    source id, so one full join finds them.

    At 10M customers the join holds two maps of 10M source ids, and inside dbt's one connection,
    110 nodes into a next night, the pre-hook running it ran out of DuckDB's 2 GB (docs/scaling.md,
    the first limit). So the maps are compared in parts of at most var customers_per_build_part
    source ids (macro customer_parts_sql, counted on the kept map), `map_sql` keeping only the
    part's ids (macro in_customer_part on every scan, as identity_map and customer_state_identity
    do); up to that many source ids, in one part. -#}
{% macro save_reidentified(map_sql, columns=[]) -%}
    {%- set saved = state_side_table('identity') -%}
    {%- set differs = [] -%}
    {%- for column in ['customer_id'] + columns -%}
        {%- do differs.append('saved.' ~ column ~ ' is distinct from tonight.' ~ column) -%}
    {%- endfor -%}
    {%- set comparison -%}
    with

    saved as (

        select * from {{ saved }}
        where {{ in_customer_part('source_customer_id') }}

    ),

    tonight as (

        {{ map_sql }}

    ),

    differing as (

        select
            saved.source_customer_id as saved_source_id,
            saved.customer_id as saved_customer_id,
            tonight.source_customer_id as tonight_source_id,
            tonight.customer_id as tonight_customer_id
        from saved
        full join tonight
            on saved.source_customer_id = tonight.source_customer_id
        where
            saved.source_customer_id is null
            or tonight.source_customer_id is null
            or {{ differs | join(' or ') }}

    )

    select
        saved_source_id as source_customer_id,
        saved_customer_id as customer_id
    from differing
    where saved_source_id is not null
    union all
    select
        tonight_source_id as source_customer_id,
        tonight_customer_id as customer_id
    from differing
    where tonight_source_id is not null
    {%- endset -%}
    {{ customer_parts_sql(
        state_side_table('reidentified'), comparison, customer_parts(saved), create=true
    ) }}
{%- endmacro %}


{#- The source ids whose resolved customer tonight is not the one in the map the state kept at
    its last run: re-attributed, gone, or new to the map (macro save_reidentified). -#}
{% macro reattributed_sources() -%}
    select source_customer_id from {{ state_side_table('reidentified') }}
{%- endmacro %}


{#- Post-hook: the identity map the state now reflects, `map_sql`, kept for the next night's
    comparison (macro save_reidentified). After an incremental night only the rows of the
    source ids that differed are replaced; after a rebuild (no `__reidentified`: the pre-hook
    drops it) the whole map is written. -#}
{% macro keep_identity_map(map_sql) -%}
    {%- set saved = state_side_table('identity') -%}
    {%- if state_side_table_exists('reidentified') -%}
        delete from {{ saved }}
        where source_customer_id in ({{ reattributed_sources() }});
        insert into {{ saved }}
        select * from ({{ map_sql }}) as tonight
        where source_customer_id in ({{ reattributed_sources() }})
    {%- else -%}
        create or replace table {{ saved }} as
        {{ map_sql }}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of the identity-joined and attributed states: the kept map, then the ledger's
    marker. -#}
{% macro identity_joined_state_post_hook() -%}
    {{ keep_identity_map(identity_map()) }};
    {{ state_marker_done() }}
{%- endmacro %}


{#- On an incremental run: the condition that keeps the groups the pre-hook deleted. -#}
{% macro where_in_identity_joined_groups(upstream_model, group_column) -%}
    {%- if is_incremental() and identity_joined_state_rebuild_reason(upstream_model) is none -%}
        where {{ in_touched_groups(group_column) }}
    {%- endif -%}
{%- endmacro %}


{% macro identity_joined_state_pre_hook(upstream_model, group_column, source_column) -%}
    {%- set rebuild_reason = identity_joined_state_rebuild_reason(upstream_model) -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    drop table if exists {{ state_side_table('touched') }};
    drop table if exists {{ state_side_table('replaced') }};
    drop table if exists {{ state_side_table('reidentified') }};
    {% if is_incremental() and rebuild_reason is none -%}
        {{ save_reidentified(identity_map()) }};
        create table {{ state_side_table('touched') }} as
        select {{ group_column }} from {{ state_side_table('touched', upstream_model) }}
        union
        select {{ group_column }} from {{ ref(upstream_model) }}
        where {{ source_column }} in ({{ reattributed_sources() }});
        {{ replace_touched_groups(group_column) }};
    {%- endif %}
    {{ state_pre_hook_end(
        rebuild_reason, state_side_table('touched'), marker, ' from ' ~ upstream_model
    ) }}
{%- endmacro %}
