-- Every raw CRM record, typed and cleaned row by row; incremental by landing partition (macros
-- landed_partitions, partitions_to_process), so a night cleans only the partitions new or
-- reloaded since.

with

{{ landed_partitions('crm', 'customers') }},

renamed as (

    select
        -- ids
        {{ clean_text('customer_id') }} as customer_id,

        -- strings
        {{ clean_label('first_name') }} as first_name,
        {{ clean_label('last_name') }} as last_name,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('phone') }} as phone,
        lower({{ clean_text('gender') }}) as gender,
        {{ clean_label('city') }} as city,
        {{ clean_label('state') }} as state,
        {{ clean_label('country') }} as country,
        {{ clean_label('income_band') }} as income_band,
        _source_file as source_file,

        -- numbers
        _line_number as source_line,

        -- booleans
        try_cast(lower({{ clean_text('marketing_consent') }}) as boolean) as has_marketing_consent,

        -- dates
        try_cast({{ clean_text('birth_date') }} as date) as birth_date,
        _partition_date as landed_date,

        -- timestamps
        {{ parse_timestamp('signup_at') }} as signup_at,
        {{ parse_timestamp('updated_at') }} as updated_at

    from source

),

{{ with_load_time() }}

select * from final
