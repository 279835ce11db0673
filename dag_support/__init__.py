"""Airflow glue the DAG files share: task defaults, the retry policy for permanent failures,
alerts and the Assets. Only ``dags/`` imports it."""
