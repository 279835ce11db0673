{#-
    Stage changes between consecutive as-of dates: each customer of the run's slice with their
    stage on the latest earlier as-of date built (null when they were not there yet, e.g. signed
    up since). Built from customer_lifecycle's history, so the previous date must have been built
    (and kept: retention at publish keeps the day before every date a rollback can return to).
-#}

with

lifecycle as (

    select * from {{ ref('customer_lifecycle') }}

),

current_stages as (

    select * from lifecycle
    where as_of_date = {{ as_of_date() }}

),

previous_date as (

    select max(as_of_date) as previous_as_of_date
    from lifecycle
    where as_of_date < {{ as_of_date() }}

),

previous_stages as (

    select lifecycle.*
    from lifecycle
    inner join previous_date
        on lifecycle.as_of_date = previous_date.previous_as_of_date

),

final as (

    select
        -- ids
        current_stages.as_of_date,
        current_stages.customer_id,

        -- strings
        previous_stages.lifecycle_stage as previous_stage,
        current_stages.lifecycle_stage,

        -- booleans
        -- a customer seen for the first time has changed stage (from none)
        coalesce(
            previous_stages.lifecycle_stage <> current_stages.lifecycle_stage, true
        ) as has_changed_stage,

        -- dates
        previous_date.previous_as_of_date

    from current_stages
    cross join previous_date
    left join previous_stages
        on current_stages.customer_id = previous_stages.customer_id

)

select * from final
