{#-
    Features per resolved customer per as-of date. The first 17 columns are the contract with the
    clustering (core/contract.py); the rest are added after them. The per-customer metrics come
    from int_customer_metrics_joined (an incremental state built in parts of the customers); what
    needs every customer of the slice at once, the spend fences, and what moves with the as-of
    date alone (recency, tenure, orders per month) are computed here.
-#}

with

joined_metrics as (

    select * from {{ ref('int_customer_metrics_joined') }}

),

metrics as (

    -- what moves with the as-of date alone, from the times the incremental state keeps
    select
        *,
        date_diff('day', cast(last_order_at as date), {{ as_of_date() }}) as recency_days,
        date_diff('day', cast(signup_at as date), {{ as_of_date() }}) as tenure_days,
        -- orders per 30-day month since the first order (at least one month); null without one
        nullif(order_count, 0) / greatest(
            date_diff('day', cast(first_order_at as date), {{ as_of_date() }}) / 30.0, 1
        ) as orders_per_month
    from joined_metrics

),

spend_fences as (

    -- Tukey fences on the log scale (money is skewed: on the raw scale every big spender is an
    -- outlier): beyond exp(q3 + k * IQR) - 1 of ln(1 + x) over the slice's buyers
    select
        exp(
            quantile_cont(ln(1 + total_spend), 0.75)
            + {{ var('outlier_iqr_multiplier') }} * (
                quantile_cont(ln(1 + total_spend), 0.75)
                - quantile_cont(ln(1 + total_spend), 0.25)
            )
        ) - 1 as total_spend_fence,
        exp(
            quantile_cont(ln(1 + avg_order_value), 0.75)
            + {{ var('outlier_iqr_multiplier') }} * (
                quantile_cont(ln(1 + avg_order_value), 0.75)
                - quantile_cont(ln(1 + avg_order_value), 0.25)
            )
        ) - 1 as avg_order_value_fence
    from metrics
    where order_count > 0

),

final as (

    -- the first 17 columns, in this order, are the data contract (docs/architecture.md)
    select
        {{ as_of_date() }} as as_of_date,
        metrics.customer_id,
        metrics.signup_at,
        metrics.first_order_at,
        metrics.last_order_at,
        metrics.order_count,
        metrics.order_days,
        metrics.total_spend,
        metrics.avg_order_value,
        metrics.recency_days,
        metrics.tenure_days,
        metrics.web_session_count,
        metrics.web_event_count,
        metrics.cart_add_count,
        metrics.email_sent_count,
        metrics.email_open_count,
        metrics.email_click_count,
        metrics.cancelled_order_count,
        metrics.returned_order_count,
        round(metrics.orders_per_month, 4) as orders_per_month,
        cast(
            round(
                metrics.avg_order_value * metrics.orders_per_month
                * {{ var('clv_horizon_months') }},
                2
            ) as decimal(18, 2)
        ) as simple_clv,
        round(metrics.avg_pages_per_session, 4) as avg_pages_per_session,
        round(metrics.bounce_rate, 4) as bounce_rate,
        round(metrics.cart_abandonment_rate, 4) as cart_abandonment_rate,
        metrics.sessions_last_90_days,
        round(metrics.email_open_rate, 4) as email_open_rate,
        round(metrics.email_click_rate, 4) as email_click_rate,
        date_diff(
            'day', cast(metrics.last_engagement_at as date), {{ as_of_date() }}
        ) as days_since_last_engagement,
        {% set engagement_score -%}
            round(100 * (
                {{ var('engagement_weight_web') }} * least(
                    coalesce(metrics.sessions_last_90_days, 0)
                    / {{ var('engaged_sessions_per_90_days') }}, 1
                )
                + {{ var('engagement_weight_open') }}
                * least(coalesce(metrics.email_open_rate, 0), 1)
                + {{ var('engagement_weight_click') }}
                * least(coalesce(metrics.email_click_rate, 0), 1)
            ), 1)
        {%- endset -%}
        {{ when_source_available(['web_events', 'email_events'], engagement_score, 'double') }}
            as engagement_score,
        round(metrics.order_share_q1, 4) as order_share_q1,
        round(metrics.order_share_q2, 4) as order_share_q2,
        round(metrics.order_share_q3, 4) as order_share_q3,
        round(metrics.order_share_q4, 4) as order_share_q4,
        round(metrics.order_share_weekend, 4) as order_share_weekend,
        -- least() skips nulls: customers without orders keep a null order value
        cast(
            least(metrics.total_spend, spend_fences.total_spend_fence) as decimal(18, 2)
        ) as total_spend_winsorized,
        cast(
            case
                when metrics.avg_order_value is not null
                    then least(metrics.avg_order_value, spend_fences.avg_order_value_fence)
            end as decimal(18, 2)
        ) as avg_order_value_winsorized,
        coalesce(
            metrics.total_spend > spend_fences.total_spend_fence
            or metrics.avg_order_value > spend_fences.avg_order_value_fence,
            false
        ) as is_spend_outlier,
        metrics.voided_order_count
    from metrics
    cross join spend_fences

)

select * from final
