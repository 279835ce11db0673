{#-
    The body of an intermediate model of events (web, email) known on the as-of date: the rows of
    the staging model `staged_model` that had landed by the as-of date and occurred before the end
    of the as-of day (an event without a readable time cannot be placed), one row per event (the
    copy landed last), with the staging model's columns but the landing file.
-#}
{% macro deduplicated_events(staged_model) %}

with

events as (

    select * from {{ ref(staged_model) }}

),

known_by_as_of_date as (

    select * from events
    where
        landed_date <= {{ as_of_date() }}
        and occurred_at < {{ as_of_date() }} + interval 1 day

),

deduplicated as (

    select * from known_by_as_of_date
    where event_id is not null
    qualify row_number() over (
            partition by event_id
            order by landed_date desc, source_file desc
        ) = 1

),

final as (

    select * exclude (source_file) from deduplicated

)

select * from final

{% endmacro %}
