{#-
    The hooks of identity resolution's two incremental state models (restricted, schema pii):

    * pii_customer_match_keys: one row per CRM record known on the as-of date, with the
      identifiers its match keys are computed from and the keys. A night compares tonight's
      records (pii_customers_deduplicated) with the identifiers the table holds; the records
      that differ either way (new, changed, or gone: a backfill of an earlier date and an erasure
      are differences of the same kind) are saved as `pii_customer_match_keys__changes`, their
      rows deleted, and their keys computed again. The SQL of the keys (macro
      identity_match_keys, with the key macros it calls) is in the state's fingerprint: a change
      rebuilds it.
    * pii_similar_email_matches: the pairs the fuzzy rule similar_email matches. Whether two
      records match depends on nothing but their own keys and the identity vars (in the state's
      fingerprint), so a night deletes the pairs of the records in the keys' `__changes` and
      compares those records again, each with every record of its blocks; the other pairs are
      kept. It rebuilds when the keys were rebuilt or it missed a run of theirs.
-#}
{% macro match_keys_fingerprint() -%}
    {{ return(identity_match_keys('customers')) }}
{%- endmacro %}


{% macro similar_email_fingerprint() -%}
    {{ return([
        var('identity_min_email_similarity'),
        var('identity_max_email_edits'),
        var('identity_min_name_similarity'),
    ] | map('string') | join('|')) }}
{%- endmacro %}


{% macro match_keys_rebuild_reason() -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marker = state_marker(this.identifier) -%}
    {%- if marker is none or marker.as_of_date is none -%}
        {{ return('no ledger of the state (first or interrupted run)') }}
    {%- elif marker.fingerprint != state_fingerprint(match_keys_fingerprint()) -%}
        {{ return('the model\'s code or its match keys\' SQL changed') }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{#- On an incremental night of pii_customer_match_keys: the records whose keys are computed
    again (else none: all). -#}
{% macro match_keys_changed_records() -%}
    {%- if is_incremental() and match_keys_rebuild_reason() is none -%}
        {{ return(state_side_table('changes')) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{#- The CRM records whose identifiers may differ from the ones the keys were computed from:
    when pii_customers_deduplicated updated itself incrementally in this invocation and its run
    before was the one the keys last saw, only the records it recomputed (its `__changes`);
    otherwise every record (a rebuild, a missed run, an interrupted one). -#}
{% macro match_keys_candidates(marker) -%}
    {%- set records = state_marker('pii_customers_deduplicated') -%}
    {%- if marker is not none and records is not none
        and records.invocation_id == invocation_id
        and records.changed_keys is not none
        and records.previous_invocation_id == marker.invocation_id -%}
        {{ return(records_side_table('pii_customers_deduplicated')) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{#- The condition on `column` (a CRM id) that keeps the candidates (true: all). -#}
{% macro match_keys_candidate(column, candidates) -%}
    {%- if candidates is none -%}
        true
    {%- else -%}
        {{ column }} in (select customer_id from {{ candidates }})
    {%- endif -%}
{%- endmacro %}


{#- The pre-hook: the records whose identifiers are new, changed or gone since the keys were
    computed (both directions of the comparison, over the candidates only when there are some:
    macro match_keys_candidates), saved as `<model>__changes`, and their keys deleted. -#}
{% macro match_keys_pre_hook() -%}
    {%- set rebuild_reason = match_keys_rebuild_reason() -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    drop table if exists {{ state_side_table('changes') }};
    {% if is_incremental() and rebuild_reason is none -%}
        {%- set candidates = match_keys_candidates(marker) %}
        create table {{ state_side_table('changes') }} as
        with

        records as (

            select customer_id as source_customer_id, {{ identity_inputs() }}
            from {{ ref('pii_customers_deduplicated') }}
            where {{ match_keys_candidate('customer_id', candidates) }}

        ),

        kept_keys as (

            select source_customer_id, {{ identity_inputs() }} from {{ this }}
            where {{ match_keys_candidate('source_customer_id', candidates) }}

        )

        select distinct source_customer_id
        from (
            (select * from records except select * from kept_keys)
            union all
            (select * from kept_keys except select * from records)
        ) as differing;
        delete from {{ this }}
        where source_customer_id in (
            select source_customer_id from {{ state_side_table('changes') }}
        );
    {%- endif %}
    {{ state_pre_hook_end(rebuild_reason, state_side_table('changes'), marker) }}
{%- endmacro %}


{#- The rule of a state built on an upstream state's changes (macro aggregated_state): it
    rebuilds when the keys were rebuilt, or it missed a run of theirs. -#}
{% macro similar_email_rebuild_reason() -%}
    {{ return(aggregated_state_rebuild_reason(
        'pii_customer_match_keys', similar_email_fingerprint()
    )) }}
{%- endmacro %}


{#- On an incremental night of pii_similar_email_matches: the records compared again (the keys'
    changes), else none: all. -#}
{% macro similar_email_changed_records() -%}
    {%- if is_incremental() and similar_email_rebuild_reason() is none -%}
        {{ return(state_side_table('changes', 'pii_customer_match_keys')) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{% macro similar_email_pre_hook() -%}
    {%- set rebuild_reason = similar_email_rebuild_reason() -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    {%- set changes = state_side_table('changes', 'pii_customer_match_keys') -%}
    {% if is_incremental() and rebuild_reason is none -%}
        delete from {{ this }}
        where
            left_customer_id in (select source_customer_id from {{ changes }})
            or right_customer_id in (select source_customer_id from {{ changes }});
    {%- endif %}
    {{ state_pre_hook_end(rebuild_reason, changes, marker) }}
{%- endmacro %}
