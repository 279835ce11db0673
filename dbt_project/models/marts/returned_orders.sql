-- The returned orders known on the as-of date, one row each, attached to the resolved customer.
-- They never count in frequency or monetary (customer_features); they are kept here so that
-- returns can be analysed rather than silently dropped.
{{ orders_kept_apart('is_returned') }}
