{#-
    A free-text label (name, city, state as typed): Unicode NFC (a composed 'é' and 'e' + accent
    compare equal), runs of whitespace collapsed to one space, trimmed; null when empty.
-#}
{% macro clean_label(column) -%}
    nullif(trim(regexp_replace(nfc_normalize({{ column }}), '\s+', ' ', 'g')), '')
{%- endmacro %}
