"""Cross-cutting pieces of the pipeline: settings, the warehouse connection, dbt invocation."""
