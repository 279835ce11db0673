-- Every RFM score 111..555 has exactly one segment name, and the seed holds no other score.

with

segment_names as (

    select * from {{ ref('rfm_segment_names') }}

),

quintiles as (

    select cast(quintile_numbers.quintile_number as varchar) as quintile
    from range(1, 6) as quintile_numbers (quintile_number)

),

possible_scores as (

    select recency.quintile || frequency.quintile || monetary.quintile as rfm_score
    from quintiles as recency
    cross join quintiles as frequency
    cross join quintiles as monetary

),

names_per_score as (

    select
        coalesce(possible_scores.rfm_score, segment_names.rfm_score) as rfm_score,
        possible_scores.rfm_score is not null as is_possible_score,
        count(segment_names.rfm_segment) as segment_name_count
    from possible_scores
    full outer join segment_names
        on possible_scores.rfm_score = segment_names.rfm_score
    group by
        coalesce(possible_scores.rfm_score, segment_names.rfm_score),
        possible_scores.rfm_score is not null

),

final as (

    select * from names_per_score
    where not is_possible_score or segment_name_count <> 1

)

select * from final
