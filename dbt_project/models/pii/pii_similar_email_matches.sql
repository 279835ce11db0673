{#-
    Identity resolution's fuzzy rule, similar_email (rule 3 of pii_customers_resolved): the pairs
    of CRM records (left id < right id) with the same email domain, local parts within the vars
    identity_min_email_similarity (Jaro-Winkler) and identity_max_email_edits (Levenshtein),
    names at least identity_min_name_similarity alike (Jaro-Winkler), birth dates not different
    (equal, or one unknown), and the same birth date or the same digits in the address (a number
    in an address identifies, a typo is in the letters): a typo in an address of the same
    person, corroborated. Only pairs in one block are compared: the same domain, the same birth
    date or digits, and the same first two or the same last two characters of the local part's
    letters (one typo cannot change both ends). The ends split the blocks of the domain and birth
    date, which grow with the customers: at 1 million demo customers 0.77 million candidate pairs
    instead of 7.2 million, the same merges.

    Incremental state (macro similar_email_pre_hook): the comparison is most of identity
    resolution's cost, and a night changes few records, so a night compares only the records
    whose keys changed (new, changed or gone: pii_customer_match_keys' changes), each with every
    record of its blocks, and keeps the pairs of the others.
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook=["{{ similar_email_pre_hook() }}"],
    post_hook=["{{ state_marker_done(similar_email_fingerprint()) }}"],
) }}

{%- set changed_records = similar_email_changed_records() %}

with

match_keys as (

    select {{ similar_email_columns() }}
    from {{ ref('pii_customer_match_keys') }}
    where email_domain is not null

),

email_blocks as not materialized (

    -- blocking: the domain, the birth date or the address digits, and either end of the local
    -- part's letters; one row per record and block it is in (the prefixes keep the four
    -- kinds of block apart), with what the rule compares; a block with no birth date or no
    -- digits is no block. Not materialized: at 10 million customers the 40 million rows do not
    -- fit DuckDB's memory, and they are cheap to compute again for each side of the join
    select *
    from (
        {% for corroboration in ["'b' || birth_date", "'d' || email_digits"] %}
            {% for email_end in ["'<' || left(email_letters, 2)", "'>' || right(email_letters, 2)"]
            %}
                select
                    source_customer_id,
                    email_domain,
                    {{ corroboration }} as corroboration,
                    {{ email_end }} as email_end,
                    email_local_part,
                    name_match_key,
                    birth_date
                from match_keys
                {% if not loop.last %}union all{% endif %}
            {% endfor %}
            {% if not loop.last %}union all{% endif %}
        {% endfor %}
    ) as blocks
    where corroboration is not null and email_end is not null

),

{% if changed_records is not none -%}
    changed_blocks as (

        -- the blocks of the records compared again tonight
        select email_blocks.* from email_blocks
        where
            email_blocks.source_customer_id in (
                select changed.source_customer_id from {{ changed_records }} as changed
            )

    ),
{%- endif %}

final as (

    -- the pairs in a block that the rule matches, each pair once (left id < right id): on an
    -- incremental night each changed record with every record of its blocks, on either side of
    -- the pair, else every record with the records of its blocks. The rule reads the two
    -- records only, so it is applied in the block join (a pair in several blocks is compared in
    -- each), not by joining the pairs to the keys again: at 10 million customers those joins
    -- ran out of DuckDB's 2 GB
    {%- set sides = [('changed_blocks', 'email_blocks'), ('email_blocks', 'changed_blocks')]
        if changed_records is not none else [('email_blocks', 'email_blocks')] %}
    {% for left_blocks, right_blocks in sides %}
        select distinct
            -- ids
            left_record.source_customer_id as left_customer_id,
            right_record.source_customer_id as right_customer_id
        from {{ left_blocks }} as left_record
        inner join {{ right_blocks }} as right_record
            on
                left_record.email_domain = right_record.email_domain
                and left_record.corroboration = right_record.corroboration
                and left_record.email_end = right_record.email_end
                and left_record.source_customer_id < right_record.source_customer_id
        where
            coalesce(left_record.birth_date = right_record.birth_date, true)
            and jaro_winkler_similarity(
                left_record.email_local_part, right_record.email_local_part
            ) >= {{ var('identity_min_email_similarity') }}
            and levenshtein(left_record.email_local_part, right_record.email_local_part)
            <= {{ var('identity_max_email_edits') }}
            and jaro_winkler_similarity(left_record.name_match_key, right_record.name_match_key)
            >= {{ var('identity_min_name_similarity') }}
        {% if not loop.last %}union{% endif %}
    {% endfor %}

)

select * from final
