"""The Airflow Assets the DAGs share: what the nightly DAG produces for data-aware schedules."""

from __future__ import annotations

from airflow.sdk import Asset

# Updated by the nightly DAG's `publish` task each time it publishes a segment version (not when
# the model was rejected and publish was skipped). DAGs scheduled on it run after each publish.
SEGMENTS_PUBLISHED = Asset(
    name="customer_segments_published",
    uri="x-segments://warehouse/segments.current_segments",
    group="segmentation",
)
