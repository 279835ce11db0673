{#-
    A phone number in E.164, the form the ad platforms hash: '+', the country calling code and the
    national number, digits only ('+1-555-010-0199' -> '+15550100199'). A number written with '+'
    or '00' already has its country code; any other is national: its leading zeros (trunk prefix)
    are dropped and the var pii_default_calling_code is put in front ('(555) 010-0199' ->
    '+15550100199' with the default 1; '020 7946 0018' -> '+442079460018' with 44). Null unless
    8 to 15 digits result (E.164 allows at most 15).
-#}
{% macro e164_phone(column) -%}
    case
        when
            length({{ _e164_digits(column) }}) between 8 and 15
            and {{ _e164_digits(column) }} not like '0%'
            then '+' || {{ _e164_digits(column) }}
    end
{%- endmacro %}

{% macro _e164_digits(column) -%}
    case
        when regexp_matches({{ column }}, '^\s*\+')
            then regexp_replace({{ column }}, '[^0-9]', '', 'g')
        when regexp_matches({{ column }}, '^\s*00')
            then substr(regexp_replace({{ column }}, '[^0-9]', '', 'g'), 3)
        else
            '{{ var("pii_default_calling_code") }}'
            || ltrim(regexp_replace({{ column }}, '[^0-9]', '', 'g'), '0')
    end
{%- endmacro %}
