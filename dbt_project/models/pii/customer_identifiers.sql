{#-
    One row per resolved customer: the cleaned direct identifiers of the person, merged over
    their CRM records like marts.customers merges the profile (macro person_value), their forms
    normalised the way the ad platforms match on, and the SHA-256 digests of those forms
    (email_sha256, phone_sha256) that audiences are uploaded with. The only relation outside
    staging that holds names, e-mails, phones and birth dates; everything else joins on
    customer_id. Rebuilt on every run (it reflects the last as-of date built).
-#}
{%- set identifier_columns = [
    'first_name', 'last_name', 'email', 'phone', 'has_marketing_consent', 'birth_date'
] %}

with

people as (

    {{ merged_people(
        ref('pii_customers_deduplicated'), ref('pii_customers_resolved'), identifier_columns
    ) }}

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
        {{ as_of_date() }} as as_of_date,
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
