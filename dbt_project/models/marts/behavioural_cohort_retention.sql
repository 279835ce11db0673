-- Behavioural cohorts of buyers and their retention curves, months counted from each customer's
-- own first order month: every buyer is in one cohort of each behaviour (quick or later first
-- purchase; engaged by email before the first order or not).

with

customers_cohorted as (

    select * from {{ ref('int_customers_cohorted') }}
    where first_order_month is not null

),

members as (

    select
        customer_id,
        case
            when is_quick_first_purchase
                then 'first_purchase_within_{{ var("quick_first_purchase_days") }}_days'
            else 'first_purchase_later'
        end as cohort,
        first_order_month as start_month
    from customers_cohorted
    union all
    select
        customer_id,
        case
            when is_email_engaged_before_first_order
                then 'engaged_by_email_before_first_order'
            else 'not_engaged_by_email_before_first_order'
        end as cohort,
        first_order_month as start_month
    from customers_cohorted

),

{{ retention_matrix('members', 'cohort_name', 'months_since_first_order') }}

select * from final
