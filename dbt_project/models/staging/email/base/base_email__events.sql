-- Every raw email events row, typed and cleaned; incremental by landing partition (macro
-- base_events).
{{ base_events('email', 'email_events', ['event_id', 'customer_id', 'campaign_id']) }}
