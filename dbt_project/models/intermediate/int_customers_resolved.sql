-- Identity resolution's result without the identifiers it compared: every source customer_id
-- (CRM records, and buyers without a CRM record) mapped to the resolved customer_id of the
-- person, with the rules that matched it. The matching itself reads names, e-mails, phones and
-- birth dates, so it runs in the restricted pii schema (pii_customers_resolved).

with

resolved_customers as (

    select * from {{ ref('pii_customers_resolved') }}

),

final as (

    select
        -- ids
        source_customer_id,
        customer_id,

        -- strings
        match_rules,

        -- booleans
        is_merged_record

    from resolved_customers

)

select * from final
