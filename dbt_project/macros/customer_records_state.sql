{#-
    The CRM records as known on the as-of date (pii_customers_deduplicated, and its copy without
    the direct identifiers, int_customers_deduplicated): incremental states keyed by the CRM id,
    no longer rebuilt every night.

    A record's row depends on its newest record (pii_customer_latest_records), the seeds it is
    looked up in, the plausible-age vars and the as-of date. So a night recomputes the ids whose
    newest record the upstream state recomputed (its `__changes`) and the ids whose as-of-date
    columns differ between the state's as-of date and tonight's (macro as_of_columns_differ: a
    birthday or a signup day passed since); it saves them as `<model>__changes`, deletes their
    rows and selects them again. It rebuilds as an aggregated state does on
    pii_customer_latest_records (macro aggregated_state_rebuild_reason: no ledger, its code, the
    vars, the seeds' content or the SQL of the rules changed, or the upstream rebuilt or ran
    without it); a backfill rebuilds the upstream, so this state too.
-#}


{#- Age in whole years on `day` of someone born on `birth_date`. -#}
{% macro age_in_years(birth_date, day) -%}
    date_sub('year', {{ birth_date }}, {{ day }})
{%- endmacro %}


{#- Whether `moment` lies after the end of `day` (a signup that cannot have happened yet). -#}
{% macro after_day(moment, day) -%}
    ({{ moment }} >= {{ day }} + interval 1 day)
{%- endmacro %}


{#- The CRM records whose columns that move with the as-of date (age, the plausible-age rule on
    the birth date, the future-signup rule) differ between `previous_day` and `day`. -#}
{% macro as_of_columns_differ(previous_day, day) -%}
    (
        {{ age_in_years('birth_date', previous_day) }}
        is distinct from {{ age_in_years('birth_date', day) }}
        or {{ after_day('signup_at', previous_day) }}
        is distinct from {{ after_day('signup_at', day) }}
    )
{%- endmacro %}


{#- What the records' rows depend on besides the model's code and the upstream's rows (see
    state_fingerprint): the plausible-age vars, the SQL of the rules, and the content of the
    seeds the states and countries are looked up in (their files' checksums). -#}
{% macro customer_records_extra() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set parts = [
        var('min_plausible_age_years'),
        var('max_plausible_age_years'),
        lookup_key('value'),
        as_of_columns_differ('a', 'b'),
    ] -%}
    {%- for node in graph.nodes.values() | sort(attribute='unique_id')
        if node.resource_type == 'seed' and node.name in ['country_names', 'state_names'] -%}
        {%- do parts.append(node.name ~ ':' ~ node.checksum.checksum) -%}
    {%- endfor -%}
    {{ return(parts | map('string') | join('|')) }}
{%- endmacro %}


{#- Config of a CRM records state built on `upstream_model` (keyed by customer_id). Returns
    whether this build is an incremental night (else: every record). -#}
{% macro customer_records_state(upstream_model) -%}
    {#- on_schema_change: a column added to the model (its code changed, so a rebuild) reaches
        the table, as it did when the model was rebuilt every night -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook=["{{ customer_records_pre_hook" ~ state_hook_arguments([upstream_model]) ~ " }}"],
        post_hook=["{{ state_marker_done(customer_records_extra()) }}"],
    ) }}
    {{ return(
        is_incremental()
        and aggregated_state_rebuild_reason(upstream_model, customer_records_extra()) is none
    ) }}
{%- endmacro %}


{#- On an incremental night (`night`, from macro customer_records_state): the condition that
    keeps the records the pre-hook deleted; else true. -#}
{% macro in_customer_records_night(night) -%}
    {%- if night -%}
        customer_id in (select customer_id from {{ state_side_table('changes') }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- The `__changes` side table of `model_name`, a model of this project in any schema. -#}
{% macro records_side_table(model_name) -%}
    {{ ref(model_name).schema }}."{{ model_name }}__changes"
{%- endmacro %}


{#- The pre-hook: on pii_customer_latest_records, the ids it recomputed and those whose as-of
    columns moved; on pii_customers_deduplicated (int_customers_deduplicated, its copy), the
    ids it recomputed. -#}
{% macro customer_records_pre_hook(upstream_model) -%}
    {%- set rebuild_reason = aggregated_state_rebuild_reason(
        upstream_model, customer_records_extra()
    ) -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    drop table if exists {{ state_side_table('changes') }};
    {% if is_incremental() and rebuild_reason is none -%}
        create table {{ state_side_table('changes') }} as
        select customer_id from {{ records_side_table(upstream_model) }}
        {%- if upstream_model == 'pii_customer_latest_records' %}
        union
        select customer_id from {{ ref(upstream_model) }}
        where {{ as_of_columns_differ("date '" ~ marker.as_of_date ~ "'", as_of_date()) }}
        {%- endif %};
        delete from {{ this }}
        where customer_id in (select customer_id from {{ state_side_table('changes') }});
    {%- endif %}
    {{ state_pre_hook_end(
        rebuild_reason, state_side_table('changes'), marker, ' from ' ~ upstream_model
    ) }}
{%- endmacro %}
