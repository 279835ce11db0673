with

source as (

    select * from {{ source('crm', 'customers') }}
    -- as-of rule: only what had landed by the as-of date
    where _partition_date <= {{ as_of_date() }}

),

state_names as (

    select * from {{ ref('state_names') }}

),

country_names as (

    select * from {{ ref('country_names') }}

),

renamed as (

    select
        -- ids
        {{ clean_text('customer_id') }} as customer_id,

        -- strings
        {{ clean_label('first_name') }} as first_name,
        {{ clean_label('last_name') }} as last_name,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('phone') }} as phone,
        lower({{ clean_text('gender') }}) as gender,
        {{ clean_label('city') }} as city,
        {{ clean_label('state') }} as state_as_typed,
        {{ clean_label('country') }} as country_as_typed,
        {{ clean_label('income_band') }} as income_band,

        -- booleans
        try_cast(lower({{ clean_text('marketing_consent') }}) as boolean) as has_marketing_consent,

        -- dates
        try_cast({{ clean_text('birth_date') }} as date) as birth_date,
        _partition_date as landed_date,

        -- timestamps
        {{ parse_timestamp('signup_at') }} as signup_at,
        {{ parse_timestamp('updated_at') }} as updated_at,

        _source_file as source_file

    from source

),

latest_records as (

    -- the newest record per customer wins; this also drops rows landed twice
    select * from renamed
    where customer_id is not null
    qualify row_number() over (
            partition by customer_id
            order by updated_at desc nulls last, landed_date desc, source_file desc
        ) = 1

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
        coalesce(country_lookup.country_name, latest_records.country_as_typed) as country
    from latest_records
    left join country_lookup
        on {{ lookup_key('latest_records.country_as_typed') }} = country_lookup.country_key

),

normalized as (

    -- state codes are looked up within the country ('CA' is California only in the US)
    select
        with_country.*,
        coalesce(state_lookup.state_name, with_country.state_as_typed) as state,
        date_sub('year', with_country.birth_date, {{ as_of_date() }}) as age_at_as_of_date
    from with_country
    left join state_lookup
        on
            with_country.country = state_lookup.country_name
            and {{ lookup_key('with_country.state_as_typed') }} = state_lookup.state_key

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
        state,
        country,
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

        coalesce(signup_at >= {{ as_of_date() }} + interval 1 day, false) as has_future_signup_at,

        -- dates
        case
            when age_at_as_of_date between {{ var('min_plausible_age_years') }}
                and {{ var('max_plausible_age_years') }}
                then birth_date
        end as birth_date,
        landed_date,

        -- timestamps
        -- a signup after the as-of day cannot have happened yet: nulled (flagged above)
        case when signup_at < {{ as_of_date() }} + interval 1 day then signup_at end as signup_at,
        updated_at

    from normalized

)

select * from final
