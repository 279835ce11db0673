-- One row per email event known on the as-of date, the copy landed last (macro
-- deduplicated_events).
{{ deduplicated_events('stg_email__events') }}
