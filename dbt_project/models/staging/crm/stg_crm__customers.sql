-- Every landed CRM record (all partitions, every version of a customer), typed and cleaned by
-- base_crm__customers. Which record is known on the as-of date is pii_customer_latest_records;
-- the seed lookups and the age rules are in pii_customers_deduplicated.

with

source as (

    select * from {{ ref('base_crm__customers') }}

),

renamed as (

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
        source_file,

        -- numbers
        source_line,

        -- booleans
        has_marketing_consent,

        -- dates
        birth_date,
        landed_date,

        -- timestamps
        signup_at,
        updated_at

    from source

)

select * from renamed
