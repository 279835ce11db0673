-- One row per CRM customer_id known on the as-of date: of the records landed by then, the one
-- updated last (on a tie the one landed last, macro landed_last: of one file, the later line),
-- which also drops records landed twice. As typed and cleaned in staging; the seed lookups and
-- the age rules, which move with the as-of date, are pii_customers_deduplicated's. Incremental
-- state (macro latest_known_copies): a night recomputes only the customer ids of the landing
-- partitions new, reloaded or gone since.
-- Restricted (schema pii): it holds the direct identifiers.

{{ latest_known_copies(
    'stg_crm__customers',
    'base_crm__customers',
    key='customer_id',
    time_column=none,
    order_by='updated_at desc nulls last',
) }},

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
        source_file,

        -- booleans
        has_marketing_consent,

        -- dates
        birth_date,
        landed_date,

        -- timestamps
        signup_at,
        updated_at

    from deduplicated

)

select * from final
