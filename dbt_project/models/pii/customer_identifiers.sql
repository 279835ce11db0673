{#-
    One row per resolved customer: the cleaned direct identifiers of the person, merged over
    their CRM records like marts.customers merges the profile (macro person_value), their forms
    normalised the way the ad platforms match on, and the SHA-256 digests of those forms
    (email_sha256, phone_sha256) that audiences are uploaded with. The only relation outside
    staging that holds names, e-mails, phones and birth dates; everything else joins on
    customer_id. It reflects the last as-of date built (the ledger's marker says which).

    An incremental state (macro customer_state, materialization state_in_parts): a person's row
    depends on nothing but their CRM records and which records are theirs, so a night recomputes
    only the customers with a record whose identifiers changed (pii_customer_match_keys'
    changes: new, changed or gone), whose consent changed, or whose records were merged or split
    (the kept identity map), the old owners and the new; each part merges only its own people.
-#}
{%- set identifier_columns = [
    'first_name', 'last_name', 'email', 'phone', 'has_marketing_consent', 'birth_date'
] %}
{%- set night = customer_state(
    upstreams=[[
        'pii_customer_match_keys', 'changes', 'source_customer_id', 'source_customer_id', 'source'
    ]],
    extra=[normalized_email('email'), e164_phone('phone'), person_value('value')] | join('|'),
    record_columns=['has_marketing_consent'],
) %}
{{ config(parts_sized_by='pii_customers_resolved') }}

with

resolved_customers as (

    select * from {{ ref('pii_customers_resolved') }}
    where
        {{ in_customer_part('customer_id') }}
        and {{ in_customer_state_night('customer_id', night) }}

),

records as (

    select * from {{ ref('pii_customers_deduplicated') }}
    where customer_id in (select resolved_customers.source_customer_id from resolved_customers)

),

people as (

    {{ merged_people('records', 'resolved_customers', identifier_columns) }}

),

normalized as (

    select
        *,
        {{ normalized_email('email') }} as email_normalized,
        {{ e164_phone('phone') }} as phone_e164
    from people

),

final as (

    select
        -- ids
        customer_id,

        -- strings
        first_name,
        last_name,
        email,
        phone,
        email_normalized,
        phone_e164,
        sha256(email_normalized) as email_sha256,
        sha256(phone_e164) as phone_sha256,

        -- booleans
        has_marketing_consent,

        -- dates
        birth_date

    from normalized

)

select * from final
