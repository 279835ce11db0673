{#-
    A UTC timestamp from text with or without a UTC offset. DuckDB's cast to timestamp drops an
    offset ('10:00+02:00' would read as 10:00), so a value that has one is read as timestamptz and
    converted to UTC; a value without one is taken as UTC already. The loader's row rules
    (ingestion/row_rules.py, parse_timestamp) read timestamps the same way.
-#}
{% macro parse_timestamp(column) -%}
    case
        when
            regexp_matches(
                {{ clean_text(column) }},
                '\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$'
            )
            then timezone('UTC', try_cast({{ clean_text(column) }} as timestamptz))
        else try_cast({{ clean_text(column) }} as timestamp)
    end
{%- endmacro %}
