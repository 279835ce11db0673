"""Command-line and development tools (run summary, versions, benchmarks, demo generators,
identity report, local Airflow). They sit on top: no other package imports them."""
