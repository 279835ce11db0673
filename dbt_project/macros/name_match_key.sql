{#-
    The key names are compared on in identity resolution: Unicode NFC, accents removed,
    lower case, runs of whitespace and punctuation collapsed to one space ('  José  O''Neil'
    and 'jose o neil' match). Null when nothing is left.
-#}
{% macro name_match_key(column) -%}
    nullif(
        trim(regexp_replace(
            lower(strip_accents(nfc_normalize({{ column }}))), '[[:space:][:punct:]]+', ' ', 'g'
        )),
        ''
    )
{%- endmacro %}
