with

customer_features as (

    select * from {{ ref('customer_features') }}
    where as_of_date = {{ as_of_date() }}

),

segment_names as (

    select * from {{ ref('rfm_segment_names') }}

),

buyers as (

    -- RFM ranks customers with at least one (valid, completed) order
    select * from customer_features
    where order_count > 0

),

scored as (

    -- quintiles, 5 = best (most recent, most orders, highest spend); equal values, equal scores
    select
        as_of_date,
        customer_id,
        {{ quintile_score('recency_days desc') }} as recency_score,
        {{ quintile_score('order_count asc') }} as frequency_score,
        {{ quintile_score('total_spend asc') }} as monetary_score
    from buyers

),

final as (

    select
        scored.as_of_date,
        scored.customer_id,
        scored.recency_score,
        scored.frequency_score,
        scored.monetary_score,
        concat(
            scored.recency_score, scored.frequency_score, scored.monetary_score
        ) as rfm_score,
        segment_names.rfm_segment
    from scored
    left join segment_names
        on concat(
                scored.recency_score, scored.frequency_score, scored.monetary_score
            ) = segment_names.rfm_score

)

select * from final
