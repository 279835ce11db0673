{#-
    The key two customer records are the same person on (thin first rule of identity resolution):
    the email lower-cased and trimmed, with the dots of the local part removed
    ('Jane.Doe@Example.com ' and 'janedoe@example.com' match). Null when there is no email.
-#}
{% macro email_match_key(column) -%}
    case
        when nullif(trim({{ column }}), '') is null then null
        when position('@' in trim({{ column }})) = 0 then lower(trim({{ column }}))
        else
            replace(split_part(lower(trim({{ column }})), '@', 1), '.', '')
            || '@'
            || substr(lower(trim({{ column }})), position('@' in trim({{ column }})) + 1)
    end
{%- endmacro %}
