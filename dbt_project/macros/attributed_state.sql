{#-
    The start (the CTE `rows_to_attribute`) of an incremental state model that attaches the rows
    of a known-copies state (macro latest_known_copies) to tonight's resolved customer
    (int_orders_attributed): the model joins `rows_to_attribute` to int_customers_resolved on the
    upstream's `source_column`.

    A night recomputes only the keys whose row or owner can have changed: the keys its upstream
    recomputed (`<upstream>__changes`), and the keys of every source id whose resolved customer is
    not the one it had when this model last ran (a merge, a split, a record gone, a buyer's first
    CRM record; macro reattributed_sources, against the map the model keeps in
    `<model>__identity`, so a night the model did not run is covered too). The keys are saved as
    `<model>__changes` and the rows deleted as `<model>__replaced`, as a known-copies state does,
    for the aggregated states built on this one (macro aggregated_state). It rebuilds as an
    aggregated state does, and when its kept map is missing (macro
    identity_joined_state_rebuild_reason).
-#}
{% macro attributed_state(upstream_model, key, source_column) %}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook=["{{ attributed_state_pre_hook" ~ state_hook_arguments(
        [upstream_model, key, source_column]
    ) ~ " }}"],
    post_hook=["{{ identity_joined_state_post_hook() }}"],
) }}

with

rows_to_attribute as (

    select * from {{ ref(upstream_model) }} -- noqa: LT02
    {{ where_in_attributed_changes(upstream_model, key) }}

)

{% endmacro %}


{#- On an incremental run: the condition that keeps the keys the pre-hook deleted. -#}
{% macro where_in_attributed_changes(upstream_model, key) -%}
    {%- if is_incremental() and identity_joined_state_rebuild_reason(upstream_model) is none -%}
        where {{ key }} in (select {{ key }} from {{ state_side_table('changes') }})
    {%- endif -%}
{%- endmacro %}


{% macro attributed_state_pre_hook(upstream_model, key, source_column) -%}
    {%- set rebuild_reason = identity_joined_state_rebuild_reason(upstream_model) -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    drop table if exists {{ state_side_table('changes') }};
    drop table if exists {{ state_side_table('replaced') }};
    drop table if exists {{ state_side_table('reidentified') }};
    {% if is_incremental() and rebuild_reason is none -%}
        {{ save_reidentified(identity_map()) }};
        create table {{ state_side_table('changes') }} as
        select {{ key }} from {{ state_side_table('changes', upstream_model) }}
        union
        select {{ key }} from {{ ref(upstream_model) }}
        where {{ source_column }} in ({{ reattributed_sources() }});
        {{ replace_changed_keys(key) }};
    {%- endif %}
    {{ state_pre_hook_end(
        rebuild_reason, state_side_table('changes'), marker, ' from ' ~ upstream_model
    ) }}
{%- endmacro %}
