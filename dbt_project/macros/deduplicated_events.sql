{#-
    The body of an intermediate model of events (web, email) known on the as-of date: the rows of
    the staging model `staged_model` that had landed by the as-of date and occurred before the end
    of the as-of day (an event without a readable time cannot be placed), one row per event (the
    copy landed last), with the staging model's columns but the landing file. Incremental state
    (macro latest_known_copies): a night recomputes only the events its changes touch.
-#}
{% macro deduplicated_events(staged_model, base_model) %}

{{ latest_known_copies(
    staged_model,
    base_model,
    key='event_id',
    time_column='occurred_at',
) }},

final as (

    select * exclude (source_file, source_line) from deduplicated

)

select * from final

{% endmacro %}
