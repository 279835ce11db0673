# syntax=docker/dockerfile:1
# The team's Airflow image: the official image plus this project's locked dependencies and packages.
# Build: `docker compose build` (docker-compose.yml has `build: .`). See docs/deployment.md.

# ---- build stage: requirements.txt from uv.lock, and the project wheel --------------------------
FROM python:3.11-slim-bookworm AS build
# uv pinned to the version that writes this lock format (uv.lock revision 5).
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
# --frozen: the lock is the truth, never re-resolved here. No hashes, so that pip can also take the
# explicit apache-airflow pin below (pip's hash mode rejects an unhashed requirement).
RUN mkdir -p /dist \
    && uv export --frozen --no-dev --no-emit-project --no-hashes --output-file /dist/requirements.txt
# The project's packages, the same list as [tool.hatch.build.targets.wheel] in pyproject.toml.
COPY core core
COPY ingestion ingestion
COPY expectations expectations
COPY transform transform
COPY ml_tasks ml_tasks
COPY activation activation
COPY reporting reporting
COPY pipeline pipeline
COPY dag_support dag_support
COPY tools tools
RUN uv build --wheel --out-dir /dist
# The Data Docs' CSS and JavaScript (pinned npm packages, checked by sha512), so the site works
# without internet access; the script needs only the standard library and npm (build stage only).
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends npm >/dev/null \
    && SEGMENTS_DATA_DOCS_ASSETS=/dist/data-docs python expectations/offline_assets.py \
    && rm -rf /var/lib/apt/lists/*

# ---- runtime: extend the official image ---------------------------------------------------------
# Keep this version equal to apache-airflow in uv.lock (tests/deployment/test_compose.py checks it).
FROM apache/airflow:3.3.2-python3.11

# As the `airflow` user (the image installs into its ~/.local virtualenv), with apache-airflow
# pinned to the image's own version: a lock that disagrees fails the build with a conflict message
# instead of silently up- or downgrading Airflow. The FAB auth manager and the Postgres provider
# come with the image and are locked in uv.lock too (make ui and the scheduler test use them), so
# the versions the tests ran are the ones installed; the import checks prove they load. Importing airflow writes an airflow.cfg with freshly generated secrets into
# AIRFLOW_HOME, hence a throwaway AIRFLOW_HOME for that check (no secrets baked into the image).
# The build output is bind-mounted, so it adds no layer.
RUN --mount=type=bind,from=build,source=/dist,target=/tmp/dist \
    pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/dist/requirements.txt \
    && pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
    && python -c "import duckdb, dbt.adapters.duckdb, great_expectations, sklearn" \
    && python -c "import core, ingestion, expectations, transform, ml_tasks, activation" \
    && python -c "import reporting, matplotlib" \
    && python -c "import pipeline, dag_support, tools" \
    && export AIRFLOW_HOME=/tmp/airflow-import-check \
    && python -c "import airflow.providers.fab.auth_manager.fab_auth_manager, psycopg2" \
    && rm -rf "${AIRFLOW_HOME}"

# The DuckDB warehouse, landing files and reports live here (a named volume in docker-compose.yml).
# Owned by airflow with group 0 and group-writable: the image runs with an arbitrary UID but GID 0.
USER root
RUN mkdir -p /opt/segments/data \
    && chown -R airflow:0 /opt/segments \
    && chmod -R g+rwX /opt/segments
USER airflow
COPY --from=build /dist/data-docs /opt/segments/data-docs-assets
ENV SEGMENTS_DATA_DOCS_ASSETS=/opt/segments/data-docs-assets
