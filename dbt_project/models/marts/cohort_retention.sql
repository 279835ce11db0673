with

resolved_customers as (

    select * from {{ ref('int_customers_resolved') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}
    -- retention counts completed orders with a plausible amount, like the spend features
    where is_valid_for_spend

),

customer_order_months as (

    select distinct
        resolved_customers.customer_id,
        cast(date_trunc('month', orders.ordered_at) as date) as order_month
    from orders
    inner join resolved_customers
        on orders.customer_id = resolved_customers.source_customer_id

),

cohorts as (

    select
        customer_id,
        min(order_month) as cohort_month
    from customer_order_months
    group by customer_id

),

cohort_sizes as (

    select
        cohort_month,
        count(*) as cohort_size
    from cohorts
    group by cohort_month

),

cohort_activity as (

    select
        cohorts.cohort_month,
        date_diff(
            'month', cohorts.cohort_month, customer_order_months.order_month
        ) as months_since_first_order,
        count(*) as active_customers
    from customer_order_months
    inner join cohorts
        on customer_order_months.customer_id = cohorts.customer_id
    group by
        cohorts.cohort_month,
        date_diff('month', cohorts.cohort_month, customer_order_months.order_month)

),

cohort_months as (

    -- every month from the cohort's first up to the as-of month, also those without activity
    select
        cohort_month,
        cohort_size,
        unnest(
            range(
                0,
                date_diff('month', cohort_month, date_trunc('month', {{ as_of_date() }})) + 1
            )
        ) as months_since_first_order
    from cohort_sizes

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        cohort_months.cohort_month,
        cohort_months.months_since_first_order,
        cohort_months.cohort_size,
        coalesce(cohort_activity.active_customers, 0) as active_customers,
        coalesce(cohort_activity.active_customers, 0) / cohort_months.cohort_size
            as retention_rate
    from cohort_months
    left join cohort_activity
        on
            cohort_months.cohort_month = cohort_activity.cohort_month
            and cohort_months.months_since_first_order
            = cohort_activity.months_since_first_order

)

select * from final
