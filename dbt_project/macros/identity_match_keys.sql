{#-
    Identity resolution's match keys of the CRM records of `customers` (pii_customers_deduplicated
    or a subset; one row per customer_id): the identifiers the keys are computed from, then what
    the rules compare (model pii_customer_match_keys). Restricted: the keys are identifiers
    themselves.
-#}
{% macro identity_match_keys(customers) -%}
    select
        customer_id as source_customer_id,
        {{ identity_inputs() }},
        {{ email_match_key('email') }} as email_match_key,
        {{ email_local_part(email_match_key('email')) }} as email_local_part,
        {{ email_domain(email_match_key('email')) }} as email_domain,
        {{ name_match_key("concat_ws(' ', first_name, last_name)") }} as name_match_key,
        {{ phone_match_key('phone') }} as phone_match_key,
        nullif(
            regexp_replace({{ email_local_part(email_match_key('email')) }}, '[^0-9]', '', 'g'),
            ''
        ) as email_digits,
        regexp_replace({{ email_local_part(email_match_key('email')) }}, '[^\p{L}]', '', 'g')
            as email_letters
    from {{ customers }}
{%- endmacro %}


{#- The columns of a CRM record the match keys are computed from: a record whose values of these
    are unchanged keeps its keys (model pii_customer_match_keys). -#}
{% macro identity_inputs() -%}
    email, first_name, last_name, phone, birth_date
{%- endmacro %}


{#- The columns the fuzzy rule similar_email compares (model pii_similar_email_matches). -#}
{% macro similar_email_columns() -%}
    source_customer_id, email_domain, email_local_part, email_digits, email_letters,
    name_match_key, birth_date
{%- endmacro %}
