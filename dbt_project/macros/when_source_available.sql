{#-
    `expression` when the run has at least one of `sources` (var available_sources), else a null
    of `type`: a feature whose source is absent (bring-your-own-data with orders only) is null,
    not a misleading 0.
-#}
{% macro when_source_available(sources, expression, type='bigint') -%}
    {%- set wanted = [sources] if sources is string else sources -%}
    {%- set available = var('available_sources') -%}
    {%- if wanted | select('in', available) | list | length > 0 -%}
        {{ expression }}
    {%- else -%}
        cast(null as {{ type }})
    {%- endif -%}
{%- endmacro %}
