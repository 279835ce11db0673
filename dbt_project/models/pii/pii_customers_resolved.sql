{#-
    Identity resolution: which CRM records are one person. Two records match when one of three
    rules holds (each a CTE below, named in match_rules):

    1. same_email: their email match keys are equal (case, surrounding whitespace and the dots of
       the local part ignored);
    2. same_name_phone: same name match key (accents, case, punctuation ignored) and the same
       phone digits;
    3. similar_email: same email domain, local parts within the vars
       identity_min_email_similarity (Jaro-Winkler) and identity_max_email_edits (Levenshtein),
       names at least identity_min_name_similarity alike (Jaro-Winkler), birth dates not
       different (equal, or one unknown), and the same birth date or the same digits in the
       address (a number in an address identifies, a typo is in the letters): a typo in an
       address of the same person, corroborated. Only pairs in one block are compared: the same
       domain, the same birth date or digits, and the same first two or the same last two
       characters of the local part's letters (one typo cannot change both ends). The ends split
       the blocks of the domain and birth date, which grow with the customers: at 1 million
       demo customers 0.77 million candidate pairs instead of 7.2 million, the same merges.

    Matches are transitive (connected components of the match graph, by a recursive CTE): a person
    is every record reachable through matches, identified by the smallest of its source ids.

    Restricted (schema pii): the rules compare names, e-mails, phones and birth dates, and the
    match keys are identifiers themselves. int_customers_resolved is the id mapping without them.
-#}

with

customers as (

    select * from {{ ref('pii_customers_deduplicated') }}

),

orders as (

    select * from {{ ref('int_orders_deduplicated') }}

),

order_only_customers as (

    -- buyers without a CRM record (e.g. bring-your-own-data with orders only): each is a person
    select distinct orders.customer_id
    from orders
    left join customers
        on orders.customer_id = customers.customer_id
    where orders.customer_id is not null and customers.customer_id is null

),

match_keys as (

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
    from customers
    union all
    select
        customer_id as source_customer_id,
        null as email_match_key,
        null as email_local_part,
        null as email_domain,
        null as name_match_key,
        null as phone_match_key,
        null as email_digits,
        null as email_letters,
        null as birth_date
    from order_only_customers

),

same_email as (

    {{ record_pairs('match_keys', ['email_match_key'], 'same_email') }}

),

same_name_phone as (

    {{ record_pairs('match_keys', ['name_match_key', 'phone_match_key'], 'same_name_phone') }}

),

email_blocks as (

    -- blocking: the domain, the birth date or the address digits, and either end of the local
    -- part's letters; one row per record and block it is in (the prefixes keep the four
    -- kinds of block apart); a block with no birth date or no digits is no block
    select *
    from (
        {% for corroboration in ["'b' || birth_date", "'d' || email_digits"] %}
            {% for email_end in ["'<' || left(email_letters, 2)", "'>' || right(email_letters, 2)"]
            %}
                select
                    source_customer_id,
                    email_domain,
                    {{ corroboration }} as corroboration,
                    {{ email_end }} as email_end
                from match_keys
                where email_domain is not null
                {% if not loop.last %}union all{% endif %}
            {% endfor %}
            {% if not loop.last %}union all{% endif %}
        {% endfor %}
    ) as blocks
    where corroboration is not null and email_end is not null

),

similar_email_candidates as (

    select distinct
        left_record.source_customer_id as left_customer_id,
        right_record.source_customer_id as right_customer_id,
        'similar_email' as match_rule
    from email_blocks as left_record
    inner join email_blocks as right_record
        on
            left_record.email_domain = right_record.email_domain
            and left_record.corroboration = right_record.corroboration
            and left_record.email_end = right_record.email_end
            and left_record.source_customer_id < right_record.source_customer_id

),

similar_email as (

    select
        similar_email_candidates.left_customer_id,
        similar_email_candidates.right_customer_id,
        similar_email_candidates.match_rule
    from similar_email_candidates
    inner join match_keys as left_record
        on similar_email_candidates.left_customer_id = left_record.source_customer_id
    inner join match_keys as right_record
        on similar_email_candidates.right_customer_id = right_record.source_customer_id
    where
        coalesce(left_record.birth_date = right_record.birth_date, true)
        and jaro_winkler_similarity(left_record.email_local_part, right_record.email_local_part)
        >= {{ var('identity_min_email_similarity') }}
        and levenshtein(left_record.email_local_part, right_record.email_local_part)
        <= {{ var('identity_max_email_edits') }}
        and jaro_winkler_similarity(left_record.name_match_key, right_record.name_match_key)
        >= {{ var('identity_min_name_similarity') }}

),

matches as (

    select * from same_email
    union all
    select * from same_name_phone
    union all
    select * from similar_email

),

match_edges as (

    -- both directions, so a record reaches its component whichever side it was on
    select distinct
        left_customer_id as from_customer_id,
        right_customer_id as to_customer_id
    from matches
    union
    select
        right_customer_id as from_customer_id,
        left_customer_id as to_customer_id
    from matches

),

reachable as (

    -- connected components: every record reachable from a matched record (union ends the
    -- recursion once no new pair appears)
    with recursive reached (from_customer_id, to_customer_id) as (
        select
            from_customer_id,
            to_customer_id
        from match_edges
        union
        select
            reached.from_customer_id,
            match_edges.to_customer_id
        from reached
        inner join match_edges
            on reached.to_customer_id = match_edges.from_customer_id
    )

    select * from reached

),

components as (

    select
        from_customer_id as source_customer_id,
        least(min(to_customer_id), from_customer_id) as customer_id
    from reachable
    group by from_customer_id

),

rules_per_record as (

    select
        source_customer_id,
        string_agg(distinct match_rule, ',' order by match_rule) as match_rules
    from (
        select
            left_customer_id as source_customer_id,
            match_rule
        from matches
        union all
        select
            right_customer_id as source_customer_id,
            match_rule
        from matches
    ) as matched_records
    group by source_customer_id

),

final as (

    select
        -- ids
        match_keys.source_customer_id,
        coalesce(components.customer_id, match_keys.source_customer_id) as customer_id,

        -- strings
        match_keys.email_match_key,
        match_keys.name_match_key,
        match_keys.phone_match_key,
        rules_per_record.match_rules,

        -- booleans
        coalesce(components.customer_id, match_keys.source_customer_id)
        <> match_keys.source_customer_id as is_merged_record

    from match_keys
    left join components
        on match_keys.source_customer_id = components.source_customer_id
    left join rules_per_record
        on match_keys.source_customer_id = rules_per_record.source_customer_id

)

select * from final
