{#-
    Identity resolution's match keys: one row per CRM record known on the as-of date, with the
    identifiers the keys are computed from (macro identity_match_keys) and the keys the rules
    compare (pii_customers_resolved, pii_similar_email_matches). Incremental state (macro
    match_keys_pre_hook): a night computes the keys of the records whose identifiers are new,
    changed or gone since, and keeps the others.
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook=["{{ match_keys_pre_hook() }}"],
    post_hook=["{{ state_marker_done(match_keys_fingerprint()) }}"],
) }}

{%- set changed_records = match_keys_changed_records() %}

with

customers as (

    select * from {{ ref('pii_customers_deduplicated') }}
    {% if changed_records is not none -%}
        where
            customer_id in (
                select changed.source_customer_id from {{ changed_records }} as changed
            )
    {%- endif %}

),

final as (

    {{ identity_match_keys('customers') }}

)

select * from final
