{#-
    The hooks of the incremental state model pii_similar_email_matches (the pairs of CRM records
    that identity resolution's fuzzy rule similar_email matches).

    Whether two records match depends on nothing but their own values of the columns the rule
    reads (macro similar_email_record_columns) and the identity vars (state_fingerprint). So a
    night keeps the pairs of two records whose values did not change, and compares again only the
    records that are new, changed or gone since the state was built: `<model>__records` holds the
    values the state was built from; the pre-hook saves tonight's as `<model>__current` and the
    records that differ (either way: new, changed, gone) as `<model>__changes`, deletes their
    pairs, and the model inserts their pairs with every record of their blocks; the post-hook
    makes tonight's values the records. A backfill of an earlier date, an erasure or a changed
    record is one more difference of the same kind. It rebuilds every pair when it has no ledger
    (first or interrupted run), its code or the vars changed, or the records are missing.
-#}
{% macro similar_email_rebuild_reason() -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marker = state_marker(this.identifier) -%}
    {%- if marker is none or marker.as_of_date is none -%}
        {{ return('no ledger of the state (first or interrupted run)') }}
    {%- elif marker.fingerprint != state_fingerprint() -%}
        {{ return('the model\'s code or vars changed') }}
    {%- endif -%}
    {%- set records = run_query(
        "select count(*) from information_schema.tables where table_schema = '" ~ this.schema
        ~ "' and table_name = '" ~ this.identifier ~ "__records'"
    ) -%}
    {%- if records.rows[0][0] == 0 -%}
        {{ return('the records it was built from are missing') }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{#- On an incremental night: the records whose pairs are compared again (else none: all). -#}
{% macro similar_email_changed_records() -%}
    {%- if is_incremental() and similar_email_rebuild_reason() is none -%}
        {{ return(state_side_table('changes')) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{% macro similar_email_pre_hook() -%}
    {%- set rebuild_reason = similar_email_rebuild_reason() -%}
    {%- set marker = state_marker(this.identifier) if is_incremental() else none -%}
    create or replace table {{ state_side_table('current') }} as
    select {{ similar_email_record_columns() }}
    from ({{ identity_match_keys(ref('pii_customers_deduplicated')) }}) as match_keys
    where email_domain is not null;
    drop table if exists {{ state_side_table('changes') }};
    {% if is_incremental() and rebuild_reason is none -%}
        create table {{ state_side_table('changes') }} as
        select distinct source_customer_id
        from (
            (
                select * from {{ state_side_table('current') }}
                except
                select * from {{ state_side_table('records') }}
            )
            union all
            (
                select * from {{ state_side_table('records') }}
                except
                select * from {{ state_side_table('current') }}
            )
        ) as differing;
        delete from {{ this }}
        where
            left_customer_id in (select source_customer_id from {{ state_side_table('changes') }})
            or right_customer_id in (
                select source_customer_id from {{ state_side_table('changes') }}
            );
    {%- elif is_incremental() -%}
        {{ log('Rebuilding ' ~ this ~ ': ' ~ rebuild_reason, info=true) }}
        delete from {{ this }};
    {%- endif %}
    {{ state_marker_in_progress(
        '(select count(*) from ' ~ state_side_table('changes') ~ ')'
        if is_incremental() and rebuild_reason is none else 'null',
        marker,
    ) }}
{%- endmacro %}


{#- Tonight's values become the records the next night compares with; the ids compared are not
    kept (an erased person's id would outlive the erasure). -#}
{% macro similar_email_post_hook() -%}
    drop table if exists {{ state_side_table('records') }};
    alter table {{ state_side_table('current') }} rename to "{{ this.identifier }}__records";
    drop table if exists {{ state_side_table('changes') }}
{%- endmacro %}
