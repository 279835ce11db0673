{#-
    The body of an acquisition-cohort retention mart: every customer of int_customers_cohorted is
    a member of the cohort of `month_column` (their signup or first order month), their clock
    starting that month; then the matrix of macro retention_matrix, with the cohort key named
    `cohort_column` and the months since the start named `months_column`. Customers without
    that month (no signup, no counted order) are in no cohort.
-#}
{% macro acquisition_cohort_retention(month_column, cohort_column, months_column) %}

with

customers_cohorted as (

    select * from {{ ref('int_customers_cohorted') }}

),

members as (

    select
        customer_id,
        {{ month_column }} as cohort,
        {{ month_column }} as start_month
    from customers_cohorted

),

{{ retention_matrix('members', cohort_column, months_column) }}

select * from final

{% endmacro %}
