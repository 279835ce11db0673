-- One row per CRM customer_id as known on the as-of date (pii_customers_deduplicated: the as-of
-- rule, the seed lookups and the age rules) without the direct identifiers: names, email,
-- phone and birth date stay in the restricted pii schema; the age in years is enough here.
-- Incremental state (macro customer_records_state): a night recomputes the ids
-- pii_customers_deduplicated recomputed.

{%- set night = customer_records_state('pii_customers_deduplicated') %}

with

customers as (

    select * from {{ ref('pii_customers_deduplicated') }}
    where {{ in_customer_records_night(night) }}

),

final as (

    select
        -- ids
        customer_id,

        -- strings
        gender,
        city,
        state,
        country,
        income_band,

        -- numbers
        age_years,

        -- booleans
        has_marketing_consent,
        has_impossible_birth_date,
        has_future_signup_at,

        -- dates
        landed_date,

        -- timestamps
        signup_at,
        updated_at

    from customers

)

select * from final
