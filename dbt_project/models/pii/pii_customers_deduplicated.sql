-- One row per CRM customer_id as known on the as-of date: its newest record
-- (pii_customer_latest_records), its state and country standardised through the seeds, its age
-- at the as-of date (an implausible birth date and a signup after the as-of day are nulled and
-- flagged). Incremental state (macro customer_records_state): a night recomputes the ids whose
-- newest record changed and those whose age or signup rule moved with the as-of date.
-- Restricted (schema pii): it holds the direct identifiers; int_customers_deduplicated is this
-- model without them, and what every non-restricted model reads.

{%- set night = customer_records_state('pii_customer_latest_records') %}

with

latest_records as (

    select * from {{ ref('pii_customer_latest_records') }}
    where {{ in_customer_records_night(night) }}

),

country_names as (

    select * from {{ ref('country_names') }}

),

state_names as (

    select * from {{ ref('state_names') }}

),

country_lookup as (

    select distinct
        {{ lookup_key('country_alias') }} as country_key,
        country_name
    from country_names

),

state_lookup as (

    select distinct
        country_name,
        {{ lookup_key('state_alias') }} as state_key,
        state_name
    from state_names

),

with_country as (

    select
        latest_records.*,
        coalesce(country_lookup.country_name, latest_records.country) as country_name
    from latest_records
    left join country_lookup
        on {{ lookup_key('latest_records.country') }} = country_lookup.country_key

),

normalized as (

    -- state codes are looked up within the country ('CA' is California only in the US)
    select
        with_country.*,
        coalesce(state_lookup.state_name, with_country.state) as state_name,
        {{ age_in_years('with_country.birth_date', as_of_date()) }} as age_at_as_of_date
    from with_country
    left join state_lookup
        on
            with_country.country_name = state_lookup.country_name
            and {{ lookup_key('with_country.state') }} = state_lookup.state_key

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
        gender,
        city,
        state_name as state,
        country_name as country,
        income_band,

        -- numbers
        case
            when age_at_as_of_date between {{ var('min_plausible_age_years') }}
                and {{ var('max_plausible_age_years') }}
                then age_at_as_of_date
        end as age_years,

        -- booleans
        has_marketing_consent,
        coalesce(
            age_at_as_of_date not between {{ var('min_plausible_age_years') }}
            and {{ var('max_plausible_age_years') }},
            false
        ) as has_impossible_birth_date,

        coalesce({{ after_day('signup_at', as_of_date()) }}, false) as has_future_signup_at,

        -- dates
        case
            when age_at_as_of_date between {{ var('min_plausible_age_years') }}
                and {{ var('max_plausible_age_years') }}
                then birth_date
        end as birth_date,
        landed_date,

        -- timestamps
        -- a signup after the as-of day cannot have happened yet: nulled (flagged above)
        case when not {{ after_day('signup_at', as_of_date()) }} then signup_at end as signup_at,
        updated_at

    from normalized

)

select * from final
