-- Every landed email event row (all partitions, every copy) as base_email__events typed and
-- cleaned it, without the partition's load time (the base model's bookkeeping). Which events are
-- known on the as-of date is decided in int_email_events_deduplicated.

with

source as (

    select * from {{ ref('base_email__events') }}

),

final as (

    -- the columns are base_email__events' (one typing of the raw rows, in macro base_events)
    select * exclude (loaded_at) from source

)

select * from final -- noqa: AM04
