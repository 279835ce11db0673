{#-
    dbt's is_incremental, overridden to know the materialization state_in_parts too: true when the
    model's table exists and this is no full refresh, for an `incremental` model (dbt's own rule)
    or a `state_in_parts` one (an incremental state built in parts of the customers). The state
    macros (state_pre_hook_end, aggregated_state_rebuild_reason, ...) decide on it.
-#}
{% macro is_incremental() -%}
    {%- if execute and model.config.materialized == 'state_in_parts' -%}
        {%- set relation = adapter.get_relation(this.database, this.schema, this.table) -%}
        {{ return(
            relation is not none and relation.type == 'table' and not should_full_refresh()
        ) }}
    {%- endif -%}
    {{ return(dbt.is_incremental()) }}
{%- endmacro %}
