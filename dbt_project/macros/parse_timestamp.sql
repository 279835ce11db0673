{#-
    A UTC timestamp from text with or without a UTC offset. DuckDB's cast to timestamp drops an
    offset ('10:00+02:00' would read as 10:00), so a value that has one (Z, +02, +0200, +02:00,
    with or without a space and UTC or GMT before it: '10:00 GMT+0200') is read as timestamptz,
    the space and zone name taken out, and converted to UTC; a value without one is taken as UTC
    already. Anything else after the time that holds a digit or a sign ('+2', 'CET+1') or a
    12-hour clock's AM/PM gives null: the cast would drop it too. The loader's row rules
    (core/sql_text.py, parse_timestamp) read timestamps the same way.
-#}
{% macro parse_timestamp(column) -%}
    {%- set time_of_day = '\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?' -%}
    {%- set signed_offset = '[+-](?:0\d|1[0-4])(?::?[0-5]\d)?' -%}
    {%- set zone_prefix = '(?:(?i:utc|gmt)\s*)?' -%}
    {%- set with_offset = '(' ~ time_of_day ~ ')\s*(?:(Z)|' ~ zone_prefix
        ~ '(' ~ signed_offset ~ '))$' -%}
    {%- set unreadable_suffix = time_of_day
        ~ '(?:[+-]|[^0-9:.][^0-9+-]*[0-9+-]|\s*[AaPp]\.?[Mm]\.?$)' -%}
    case
        when regexp_matches({{ clean_text(column) }}, '{{ with_offset }}')
            then timezone(
                'UTC',
                try_cast(
                    regexp_replace({{ clean_text(column) }}, '{{ with_offset }}', '\1\2\3')
                    as timestamptz
                )
            )
        when regexp_matches({{ clean_text(column) }}, '{{ unreadable_suffix }}') then null
        else try_cast({{ clean_text(column) }} as timestamp)
    end
{%- endmacro %}
