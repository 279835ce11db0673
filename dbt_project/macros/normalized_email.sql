{#-
    An email the way the ad platforms hash it (Google Customer Match, Meta, TikTok): surrounding
    whitespace removed, lower-cased, nothing else (no dots or '+tags' removed, also not for
    Gmail). Null unless it has the shape local@domain.tld (one '@', no whitespace).
-#}
{% macro normalized_email(column) -%}
    case
        when regexp_full_match(lower({{ clean_text(column) }}), '[^@\s]+@[^@\s]+\.[^@\s]+')
            then lower({{ clean_text(column) }})
    end
{%- endmacro %}
