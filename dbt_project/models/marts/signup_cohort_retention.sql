-- Acquisition cohorts by month of signup (prospects included: they count in the cohort size and
-- are never active): the retention matrix (cohort x months since signup) of the as-of date.

with

customers_cohorted as (

    select * from {{ ref('int_customers_cohorted') }}

),

members as (

    select
        customer_id,
        signup_month as cohort,
        signup_month as start_month
    from customers_cohorted

),

{{ retention_matrix('members', 'signup_month', 'months_since_signup') }}

select * from final
