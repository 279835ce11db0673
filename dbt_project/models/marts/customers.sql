{#-
    One row per resolved customer per as-of date: the person's profile, merged over their CRM
    records (a value from the record with the smallest source id that has one: macro
    person_value), without direct identifiers (those are in pii.customer_identifiers), with missing
    values imputed and flagged: age by the median within the same country and gender (else the
    overall median), gender and income band by the mode within the country (else overall).
-#}
{%- set profile_columns = [
    'city', 'state', 'country', 'gender', 'income_band', 'age_years', 'has_marketing_consent'
] %}

with

people as (

    {{ merged_people(
        ref('int_customers_deduplicated'),
        ref('int_customers_resolved'),
        profile_columns,
        extra=['min(customers.signup_at) as signup_at'],
    ) }}

),

age_medians as (

    select
        country,
        gender,
        median(age_years) as median_age_years
    from people
    group by country, gender

),

gender_modes as (

    select
        country,
        mode(gender order by gender) as mode_gender
    from people
    group by country

),

income_modes as (

    select
        country,
        mode(income_band order by income_band) as mode_income_band
    from people
    group by country

),

overall as (

    select
        median(age_years) as median_age_years,
        mode(gender order by gender) as mode_gender,
        mode(income_band order by income_band) as mode_income_band
    from people

),

final as (

    select
        -- ids
        {{ as_of_date() }} as as_of_date,
        people.customer_id,

        -- strings
        people.city,
        people.state,
        people.country,
        coalesce(people.gender, gender_modes.mode_gender, overall.mode_gender) as gender,
        coalesce(
            people.income_band, income_modes.mode_income_band, overall.mode_income_band
        ) as income_band,

        -- numbers
        cast(round(coalesce(
            people.age_years, age_medians.median_age_years, overall.median_age_years
        )) as integer) as age_years,
        people.source_record_count,

        -- booleans
        people.has_marketing_consent,
        people.age_years is null as is_imputed_age_years,
        people.gender is null as is_imputed_gender,
        people.income_band is null as is_imputed_income_band,

        -- timestamps
        people.signup_at

    from people
    cross join overall
    left join age_medians
        on
            people.country is not distinct from age_medians.country
            and people.gender is not distinct from age_medians.gender
    left join gender_modes
        on people.country is not distinct from gender_modes.country
    left join income_modes
        on people.country is not distinct from income_modes.country

)

select * from final
