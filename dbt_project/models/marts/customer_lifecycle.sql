{#-
    One lifecycle stage per customer per as-of date, the first rule that holds, in this order
    (thresholds are vars in dbt_project.yml):
    voided (no counted order, but orders that were all cancelled, returned or worth nothing) >
    prospect (no order at all) > churned (no order for more than lifecycle_churned_after_days) >
    at_risk (none for more than lifecycle_at_risk_after_days) > new (fewer than
    lifecycle_active_after_orders orders and the first one less than lifecycle_active_after_days
    ago) > loyal (at least lifecycle_loyal_after_orders orders) > active.
-#}

with

customer_features as (

    select * from {{ ref('customer_features') }}
    where as_of_date = {{ as_of_date() }}

),

staged as (

    select
        as_of_date,
        customer_id,
        order_count,
        recency_days,
        date_diff('day', cast(first_order_at as date), as_of_date) as days_since_first_order,
        case
            when order_count = 0 and voided_order_count > 0 then 'voided'
            when order_count = 0 then 'prospect'
            when recency_days > {{ var('lifecycle_churned_after_days') }} then 'churned'
            when recency_days > {{ var('lifecycle_at_risk_after_days') }} then 'at_risk'
            when
                order_count < {{ var('lifecycle_active_after_orders') }}
                and date_diff('day', cast(first_order_at as date), as_of_date)
                < {{ var('lifecycle_active_after_days') }}
                then 'new'
            when order_count >= {{ var('lifecycle_loyal_after_orders') }} then 'loyal'
            else 'active'
        end as lifecycle_stage
    from customer_features

),

final as (

    select
        -- ids
        as_of_date,
        customer_id,

        -- strings
        lifecycle_stage,

        -- numbers
        order_count,
        recency_days,
        days_since_first_order

    from staged

)

select * from final
