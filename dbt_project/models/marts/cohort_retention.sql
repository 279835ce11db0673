-- Acquisition cohorts by month of first counted order: the retention matrix (cohort x months
-- since the first order) of the as-of date. Month 0 is the cohort month itself (retention 1).

with

customers_cohorted as (

    select * from {{ ref('int_customers_cohorted') }}

),

members as (

    select
        customer_id,
        first_order_month as cohort,
        first_order_month as start_month
    from customers_cohorted

),

{{ retention_matrix('members', 'cohort_month', 'months_since_first_order') }}

select * from final
