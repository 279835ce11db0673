-- Acquisition cohorts by month of signup (prospects included: they count in the cohort size and
-- are never active): the retention matrix (cohort x months since signup) of the as-of date.
{{ acquisition_cohort_retention('signup_month', 'signup_month', 'months_since_signup') }}
