-- One row per website event known on the as-of date, the copy landed last (macro
-- deduplicated_events); incremental state (macro latest_known_copies).
{{ deduplicated_events('stg_web__events', 'base_web__events') }}
