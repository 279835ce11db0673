{#-
    Identity resolution's match keys of the CRM records of `customers` (one row per
    source_customer_id): what the rules compare (models pii_customers_resolved and
    pii_similar_email_matches). Restricted: the keys are identifiers themselves.
-#}
{% macro identity_match_keys(customers) -%}
    select
        customer_id as source_customer_id,
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
            as email_letters,
        birth_date
    from {{ customers }}
{%- endmacro %}


{#- The columns the fuzzy rule similar_email reads: a record whose values of these are unchanged
    keeps its pairs (model pii_similar_email_matches). -#}
{% macro similar_email_record_columns() -%}
    source_customer_id, email_domain, email_local_part, email_digits, email_letters,
    name_match_key, birth_date
{%- endmacro %}
