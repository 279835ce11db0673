-- One row per website event known on the as-of date, the copy landed last (macro
-- deduplicated_events).
{{ deduplicated_events('stg_web__events') }}
