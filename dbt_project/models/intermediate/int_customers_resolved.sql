{#-
    Identity resolution, thin first rule: CRM records sharing a normalised email are one person,
    identified by the smallest of their source ids. A record without an email stays on its own.
    A later issue adds fuzzy matching (names, phones, addresses, web identities).
-#}

with

customers as (

    select * from {{ ref('stg_crm__customers') }}

),

match_keys as (

    select
        customer_id as source_customer_id,
        {{ email_match_key('email') }} as email_match_key
    from customers

),

resolved as (

    select
        source_customer_id,
        email_match_key,
        case
            when email_match_key is null then source_customer_id
            else min(source_customer_id) over (partition by email_match_key)
        end as customer_id
    from match_keys

),

final as (

    select
        -- ids
        source_customer_id,
        customer_id,

        -- strings
        email_match_key,

        -- booleans
        source_customer_id <> customer_id as is_merged_record

    from resolved

)

select * from final
