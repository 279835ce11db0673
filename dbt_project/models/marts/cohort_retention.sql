-- Acquisition cohorts by month of first counted order: the retention matrix (cohort x months
-- since the first order) of the as-of date. Month 0 is the cohort month itself (retention 1).
{{ acquisition_cohort_retention('first_order_month', 'cohort_month', 'months_since_first_order') }}
