{#-
    The CTEs of a retention matrix, ending in `final`: one row per cohort and month since the
    cohort's start month, from the month itself (0) up to the as-of month, with the columns
    as_of_date, <cohort_column>, <months_column>, cohort_size, active_customers,
    retention_rate, revenue.

    `members` names a CTE with one row per customer: customer_id, cohort (the cohort key) and
    start_month (the month the customer's clock starts: signup or first order month). Activity is
    int_customer_months_aggregated (months with a counted order). Per cohort and month since start:
    cohort_size = members whose start month is at least that many months before the as-of month
    (for a calendar cohort, all of them), active_customers = those of them with a counted order
    in that month, retention_rate = active_customers / cohort_size, revenue = their counted spend.
-#}
{% macro retention_matrix(members, cohort_column, months_column) -%}

customer_months as (

    select * from {{ ref('int_customer_months_aggregated') }}

),

member_months as (

    -- every member, for every month from their start month up to the as-of month
    select
        customer_id,
        cohort,
        start_month,
        unnest(range(
            0, date_diff('month', start_month, date_trunc('month', {{ as_of_date() }})) + 1
        )) as months_since_start
    from {{ members }}
    where start_month is not null

),

member_activity as (

    select
        member_months.cohort,
        member_months.months_since_start,
        customer_months.customer_id as active_customer_id,
        customer_months.revenue
    from member_months
    left join customer_months
        on
            member_months.customer_id = customer_months.customer_id
            and customer_months.activity_month
            = member_months.start_month + to_months(member_months.months_since_start)

),

retention_matrix as (

    select
        cohort,
        months_since_start,
        count(*) as cohort_size,
        count(active_customer_id) as active_customers,
        count(active_customer_id) / count(*) as retention_rate,
        cast(coalesce(sum(revenue), 0) as decimal(18, 2)) as revenue
    from member_activity
    group by cohort, months_since_start

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        cohort as {{ cohort_column }},
        months_since_start as {{ months_column }},
        cohort_size,
        active_customers,
        retention_rate,
        revenue
    from retention_matrix

)

{%- endmacro %}
