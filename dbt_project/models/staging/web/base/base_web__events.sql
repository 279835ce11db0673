-- Every raw web events row, typed and cleaned; incremental by landing partition (macro
-- base_events).
{{ base_events('web', 'web_events', ['event_id', 'session_id', 'customer_id', 'anonymous_id']) }}
