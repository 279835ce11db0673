-- One row per email event known on the as-of date, the copy landed last (macro
-- deduplicated_events); incremental state (macro latest_known_copies).
{{ deduplicated_events('stg_email__events', 'base_email__events') }}
