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

cohort_starts as (

    -- members per cohort and start month, with the months from their start to the as-of month
    select
        cohort,
        start_month,
        count(*) as member_count,
        date_diff('month', start_month, date_trunc('month', {{ as_of_date() }})) as months_to_as_of
    from {{ members }}
    where start_month is not null
    group by cohort, start_month

),

cohort_sizes as (

    -- a member counts in every month from their start month up to the as-of month: the size of
    -- a cohort's month k adds up the start months at least k months before the as-of month
    -- (counted per start month, not expanded per member and month)
    select
        cohort,
        unnest(range(0, months_to_as_of + 1)) as months_since_start,
        member_count
    from cohort_starts

),

cohort_size_per_month as (

    select
        cohort,
        months_since_start,
        cast(sum(member_count) as bigint) as cohort_size
    from cohort_sizes
    group by cohort, months_since_start

),

member_activity as (

    -- the members' months with a counted order, from their start month up to the as-of month
    select
        members.cohort,
        date_diff('month', members.start_month, customer_months.activity_month)
            as months_since_start,
        customer_months.revenue
    from {{ members }} as members
    inner join customer_months
        on members.customer_id = customer_months.customer_id
    where
        customer_months.activity_month >= members.start_month
        and customer_months.activity_month <= date_trunc('month', {{ as_of_date() }})

),

activity_per_month as (

    select
        cohort,
        months_since_start,
        count(*) as active_customers,
        sum(revenue) as revenue
    from member_activity
    group by cohort, months_since_start

),

retention_matrix as (

    select
        cohort_size_per_month.cohort,
        cohort_size_per_month.months_since_start,
        cohort_size_per_month.cohort_size,
        coalesce(activity_per_month.active_customers, 0) as active_customers,
        coalesce(activity_per_month.active_customers, 0) / cohort_size_per_month.cohort_size
            as retention_rate,
        cast(coalesce(activity_per_month.revenue, 0) as decimal(18, 2)) as revenue
    from cohort_size_per_month
    left join activity_per_month
        on
            cohort_size_per_month.cohort is not distinct from activity_per_month.cohort
            and cohort_size_per_month.months_since_start = activity_per_month.months_since_start

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
