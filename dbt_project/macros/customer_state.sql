{#-
    An incremental state with one row per resolved customer, joined and aggregated from the
    incremental states under it (int_customer_metrics_joined). Call it first in the model:
    `{% set night = customer_state(upstreams, window) %}`, then filter every per-customer input
    with `in_customer_state_night(column, night)` beside in_customer_part. Built in parts of the
    customers (materialization state_in_parts, config parts_sized_by).

    A night recomputes only the customers whose rows can have changed, saved as `<model>__touched`
    by the pre-hook, deleted and inserted again:
    - the customers of the rows each upstream state replaced or recomputed tonight (its
      `<upstream>__replaced`, and its rows in `<upstream>__changes` or `__touched`), the old
      owners and the new; an upstream keyed by CRM id (source id) through tonight's identity map;
    - the customers whose identity changed: the model keeps the identity map it was built with,
      each source id with its resolved customer and the `record_columns` of its CRM record
      (`<model>__identity`, brought up to date by the post-hook), compared with tonight's (macro
      save_reidentified); both the old and the new customer of a differing source id (a merge,
      a split, a record new, gone or changed);
    - with `window` (a count over the last days up to the as-of date), the customers of the rows
      that left the window since the state's as-of date.
    Columns that move with the as-of date alone (recency, tenure) do not belong in such a state:
    the model keeps the times they are computed from.

    It rebuilds (in parts, from every upstream row) as an aggregated state does on any of its
    upstreams (macro aggregated_state_rebuild_reason: no ledger, code or vars changed, an upstream
    rebuilt, not built in this invocation or built once without this model), when the as-of date
    is before the state's, and when its kept map is missing.

    upstreams: a list of [model, side table ('changes' or 'touched'), its key column, the
    customer column, 'customer' (resolved ids) or 'source' (CRM ids)]; when the key is the
    customer column, the side table's keys are the customers (its rows new, changed or gone)
    and neither the upstream nor its `__replaced` is read. window: [model, time column, days]
    or none. extra: what else the rows depend on (vars, the SQL of macros the model calls), as
    in state_fingerprint. record_columns: the columns of int_customers_deduplicated the kept
    map holds (default the signup time). Returns whether this build is an incremental night.
-#}
{% macro customer_state(upstreams, window=none, extra='', record_columns=['signup_at']) -%}
    {{ config(
        materialized='state_in_parts',
        pre_hook=["{{ customer_state_pre_hook" ~ state_hook_arguments(
            [upstreams, window, extra, record_columns]
        ) ~ " }}"],
        post_hook=["{{ customer_state_post_hook" ~ state_hook_arguments(
            [extra, record_columns]
        ) ~ " }}"],
    ) }}
    {#- what the hooks read (dbt takes a model's dependencies from its refs) -#}
    {%- for name in upstreams | map('first') | list + (window[:1] if window else [])
        + ['int_customers_resolved', 'int_customers_deduplicated'] -%}
        {%- do ref(name) -%}
    {%- endfor -%}
    {{ return(is_incremental() and customer_state_rebuild_reason(upstreams, extra) is none) }}
{%- endmacro %}


{#- The condition on a per-customer input of a customer state: on an incremental night
    (`night`, returned by macro customer_state), its rows of the customers the pre-hook
    deleted. -#}
{% macro in_customer_state_night(customer_id, night) -%}
    {%- if night -%}
        {{ customer_id }} in (select customer_id from {{ state_side_table('touched') }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- Why a customer state rebuilds (a short text), or none. -#}
{% macro customer_state_rebuild_reason(upstreams, extra='') -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- for upstream in upstreams -%}
        {%- set reason = aggregated_state_rebuild_reason(upstream[0], extra) -%}
        {%- if reason is not none -%}
            {{ return(reason) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set marker = state_marker(this.identifier) -%}
    {%- if (marker.as_of_date | string) > as_of_date_text() -%}
        {{ return('the as-of date ' ~ as_of_date_text() ~ ' is before the state\'s '
                  ~ marker.as_of_date) }}
    {%- endif -%}
    {%- if not state_side_table_exists('identity') -%}
        {{ return('no identity map of its last run') }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{#- The identity map a customer state reflects: each source id, its resolved customer and the
    `record_columns` of its CRM record (one part of the source ids while macro save_reidentified
    compares the maps in parts, all of them otherwise: macro in_customer_part). -#}
{% macro customer_state_identity(record_columns) -%}
    select
        resolved.source_customer_id,
        resolved.customer_id,
        records.{{ record_columns | join(', records.') }}
    from {{ ref('int_customers_resolved') }} as resolved
    left join (
        select customer_id, {{ record_columns | join(', ') }}
        from {{ ref('int_customers_deduplicated') }}
        where {{ in_customer_part('customer_id') }}
    ) as records
        on resolved.source_customer_id = records.customer_id
    where {{ in_customer_part('resolved.source_customer_id') }}
{%- endmacro %}


{% macro customer_state_pre_hook(upstreams, window, extra, record_columns) -%}
    {%- set rebuild_reason = customer_state_rebuild_reason(upstreams, extra) -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    drop table if exists {{ state_side_table('touched') }};
    drop table if exists {{ state_side_table('reidentified') }};
    {% if is_incremental() and rebuild_reason is none -%}
        {{ save_reidentified(customer_state_identity(record_columns), record_columns) }};
        create table {{ state_side_table('touched') }} as
        with

        touched as (

            select customer_id from {{ state_side_table('reidentified') }}
            {%- for upstream, side, key, column, kind in upstreams %}
            {%- set keys %}
                select {{ key }} as customer_id from {{ state_side_table(side, upstream) }}
            {%- endset %}
            {%- set rows_of_keys %}
                select {{ column }} as customer_id
                from {{ state_side_table('replaced', upstream) }}
                union all
                select {{ column }} as customer_id from {{ ref(upstream) }}
                where {{ key }} in (select {{ key }} from {{ state_side_table(side, upstream) }})
            {%- endset %}
            {%- set rows = keys if key == column else rows_of_keys %}
            union all
            {% if kind == 'source' -%}
                select customer_id from {{ ref('int_customers_resolved') }}
                where source_customer_id in ({{ rows }})
            {%- else -%}
                {{ rows }}
            {%- endif %}
            {%- endfor %}
            {%- if window %}
            {%- set window_model, time_column, days = window %}
            union all
            select customer_id from {{ ref(window_model) }}
            where
                {{ time_column }} >= date '{{ marker.as_of_date }}' - interval {{ days - 1 }} day
                and {{ time_column }} < {{ as_of_date() }} - interval {{ days - 1 }} day
            {%- endif %}

        )

        select distinct customer_id from touched
        where customer_id is not null;
        delete from {{ this }}
        where customer_id in (select customer_id from {{ state_side_table('touched') }});
    {%- endif %}
    {{ state_pre_hook_end(rebuild_reason, state_side_table('touched'), marker) }}
{%- endmacro %}


{#- Post-hook: the identity map the state now reflects, for the next night's comparison (macro
    keep_identity_map); then the ledger's marker. -#}
{% macro customer_state_post_hook(extra, record_columns) -%}
    {{ keep_identity_map(customer_state_identity(record_columns)) }};
    {{ state_marker_done(extra) }}
{%- endmacro %}
