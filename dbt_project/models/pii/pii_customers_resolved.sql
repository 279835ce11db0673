{#-
    Identity resolution: which CRM records are one person. Two records match when one of three
    rules holds (each a CTE below, named in match_rules):

    1. same_email: their email match keys are equal (case, surrounding whitespace and the dots of
       the local part ignored);
    2. same_name_phone: same name match key (accents, case, punctuation ignored) and the same
       phone digits;
    3. similar_email: a typo in an address of the same person, corroborated by the name and the
       birth date or the address digits: the pairs of pii_similar_email_matches, where the rule
       is described (an incremental state: the comparison is most of identity resolution's cost).

    Matches are transitive (connected components of the match graph, by a recursive CTE): a person
    is every record reachable through matches, identified by the smallest of its source ids.

    The import CTEs are not materialized: DuckDB would copy a CTE read more than once (the
    match keys are read five times) and spill the copy at 10M customers; inlined, each reference
    scans the table's columns it needs.

    Restricted (schema pii): the rules compare names, e-mails, phones and birth dates, and the
    match keys are identifiers themselves (pii_customer_match_keys, an incremental state with the
    fuzzy rule's pairs). int_customers_resolved is the id mapping without them.
-#}

with

customers as not materialized (

    -- one row per CRM record known on the as-of date, with its match keys
    select * from {{ ref('pii_customer_match_keys') }}

),

orders as not materialized (

    select * from {{ ref('int_orders_deduplicated') }}

),

order_only_customers as (

    -- buyers without a CRM record (e.g. bring-your-own-data with orders only): each is a person
    select distinct orders.customer_id
    from orders
    left join customers
        on orders.customer_id = customers.source_customer_id
    where orders.customer_id is not null and customers.source_customer_id is null

),

match_keys as not materialized (

    select
        source_customer_id,
        email_match_key,
        name_match_key,
        phone_match_key
    from customers
    union all
    select
        customer_id as source_customer_id,
        null as email_match_key,
        null as name_match_key,
        null as phone_match_key
    from order_only_customers

),

same_email as (

    {{ record_pairs('match_keys', ['email_match_key'], 'same_email') }}

),

same_name_phone as (

    {{ record_pairs('match_keys', ['name_match_key', 'phone_match_key'], 'same_name_phone') }}

),

similar_email as (

    select
        left_customer_id,
        right_customer_id,
        'similar_email' as match_rule
    from {{ ref('pii_similar_email_matches') }}

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
