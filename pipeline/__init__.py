"""Orchestration: the step functions each Airflow task runs (``pipeline.steps``), wiring the
stages (ingestion, expectations, transform, ml_tasks, activation) over the core."""
