"""docker-compose.yaml runs trender_daily: services, profiles, settings and mounts it needs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlparse

from tests.deploy import code_facts
from tests.deploy.compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    MissingVariable,
    interpolate,
    load,
    load_raw,
    read_env_file,
    referenced_variables,
)

PROJECT_ROOT = code_facts.PROJECT_ROOT
AIRFLOW_HOME = PurePosixPath("/opt/airflow")
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "flower",
)
PROFILES = {
    "postgres": None,
    "redis": ["celery"],
    "airflow-init": None,
    "airflow-apiserver": None,
    "airflow-scheduler": None,
    "airflow-dag-processor": None,
    "airflow-triggerer": None,
    "airflow-worker": ["celery"],
    "flower": ["celery"],
    "replay": ["replay"],
}
COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
    "flower": "celery flower",
}
REPLAY_URL = "http://replay:8765"
# Set by the compose file itself or not needed there: include/ is mounted beside plugins/.
ENV_NOT_FROM_COMPOSE_USERS = frozenset({"TRENDER_SQL_DIR", "AIRFLOW__CORE__DAGS_FOLDER"})
SECRET_MARKERS = ("PASSWORD", "SECRET", "FERNET", "TOKEN")
PLACEHOLDERS = frozenset({"change-me", ""})


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    """Return the variables of .env.example."""
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(example_env: dict[str, str]) -> dict[str, Any]:
    """Return the compose file as compose sees it with .env.example as its .env."""
    return load(example_env)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    assert isinstance(environment, dict), "environment must be a mapping"
    return {key: str(value) for key, value in environment.items()}


def _mounts(service: dict[str, Any]) -> dict[PurePosixPath, tuple[str, str]]:
    """Map each container path to (source, options) from short volume syntax."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *options = volume.split(":")
        mounts[PurePosixPath(target)] = (source, options[0] if options else "rw")
    return mounts


def test_services_and_their_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {name: services[name].get("profiles") for name in services} == PROFILES


def test_each_service_runs_the_expected_command(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {name: services[name]["command"] for name in COMMANDS} == COMMANDS
    replay = services["replay"]
    assert replay["entrypoint"] == ["python", "-m", "trender.github.replay"]
    assert replay["command"] == ["--host", "0.0.0.0", "--port", "8765", "--allow-remote"]


def test_replay_command_line_accepts_the_compose_flags() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "trender.github.replay", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT / "plugins",
    )
    for flag in ("--host", "--port", "--allow-remote"):
        assert flag in completed.stdout


def test_init_migrates_creates_the_admin_and_checks_both_connections(
    compose: dict[str, Any],
) -> None:
    init = compose["services"]["airflow-init"]
    script = init["command"][1]
    assert init["entrypoint"] == "/bin/bash"
    assert init["command"][0] == "-c"
    assert script.index("airflow db migrate") < script.index("airflow users create --role Admin")
    for conn_id in sorted(code_facts.connection_ids(code_facts.project_trees())):
        assert f"airflow connections get {conn_id} " in script
    assert script.startswith("set -euo pipefail\n")


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    checked = {
        name: service["healthcheck"]["test"][0]
        for name, service in services.items()
        if "healthcheck" in service
    }
    assert set(checked) == set(services) - {"airflow-init"}
    assert set(checked.values()) <= {"CMD", "CMD-SHELL"}
    assert services["airflow-apiserver"]["healthcheck"]["test"][-1] == (
        "http://localhost:8080/api/v2/monitor/health"
    )
    assert services["airflow-scheduler"]["healthcheck"]["test"][-1] == (
        "http://localhost:8974/health"
    )
    environment = _environment(services["airflow-scheduler"])
    assert environment["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "DagProcessorJob" in services["airflow-dag-processor"]["healthcheck"]["test"][1]
    assert "TriggererJob" in services["airflow-triggerer"]["healthcheck"]["test"][1]


def test_long_running_services_restart_and_init_does_not(compose: dict[str, Any]) -> None:
    restarts = {name: service.get("restart") for name, service in compose["services"].items()}
    assert restarts.pop("airflow-init") == "no"
    assert set(restarts.values()) == {"always"}


def test_api_server_listens_on_8080(compose: dict[str, Any]) -> None:
    assert compose["services"]["airflow-apiserver"]["ports"] == ["8080:8080"]


def test_airflow_services_share_the_settings_the_dag_needs(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        environment = _environment(compose["services"][name])
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert environment["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert environment["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(AIRFLOW_HOME / "plugins")
        assert environment["AIRFLOW__CORE__DAGS_FOLDER"] == str(AIRFLOW_HOME / "dags")
        assert environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-apiserver:8080/execution/"
        )
        assert environment["DEV_MODE"] == "false"
        assert environment["DEV_REPO_LIMIT"] == "5"
        assert environment["GITHUB_TOKEN_ENCRYPTION_KEY"] == ""
        assert environment["TRENDER_RETRY_DELAY_SECONDS"] == "30"


def test_connections_the_code_reads_come_from_the_environment(
    compose: dict[str, Any], example_env: dict[str, str]
) -> None:
    conn_ids = code_facts.connection_ids(code_facts.project_trees())
    assert conn_ids == {"trender_postgres", "trender_github"}
    password = example_env["POSTGRES_PASSWORD"]
    for name in AIRFLOW_SERVICES:
        environment = _environment(compose["services"][name])
        assert {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in conn_ids} <= set(environment)
        warehouse = urlsplit(environment["AIRFLOW_CONN_TRENDER_POSTGRES"])
        assert (warehouse.scheme, warehouse.hostname, warehouse.port) == (
            "postgresql",
            "postgres",
            5432,
        )
        assert (warehouse.path, warehouse.username, warehouse.password) == (
            "/trender",
            "airflow",
            password,
        )
        metadata = urlsplit(environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert (metadata.hostname, metadata.path) == ("postgres", "/airflow")
        github = json.loads(environment["AIRFLOW_CONN_TRENDER_GITHUB"])
        assert github == {"conn_type": "http", "host": "https://api.github.com", "password": ""}


def test_environment_the_code_reads_is_passed_and_nothing_unread(
    compose: dict[str, Any],
) -> None:
    read = code_facts.environment_names(code_facts.project_trees())
    assert {"DEV_MODE", "DEV_REPO_LIMIT", "TRENDER_SQL_DIR"} <= read
    for name in AIRFLOW_SERVICES:
        environment = _environment(compose["services"][name])
        assert read - ENV_NOT_FROM_COMPOSE_USERS <= set(environment)
        project_settings = {
            key
            for key in environment
            if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_ADMIN_", "DUMB_INIT"))
        }
        assert project_settings <= read, name


def test_celery_is_switched_by_one_setting(example_env: dict[str, str]) -> None:
    celery = load({**example_env, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"})
    services = celery["services"]
    for name in AIRFLOW_SERVICES:
        environment = _environment(services[name])
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert urlsplit(environment["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
        assert urlsplit(environment["AIRFLOW__CELERY__RESULT_BACKEND"]).path == "/airflow"
    worker = services["airflow-worker"]["depends_on"]
    assert worker["redis"] == {"condition": "service_healthy"}
    assert worker["airflow-apiserver"] == {"condition": "service_healthy"}
    raw = load_raw()
    assert [
        name
        for name, service in raw["services"].items()
        if "AIRFLOW__CORE__EXECUTOR" in (service.get("environment") or {})
        and service["environment"]["AIRFLOW__CORE__EXECUTOR"]
        != "${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
    ] == []


def test_replay_profile_serves_github_for_the_connection(example_env: dict[str, str]) -> None:
    replayed = load({**example_env, "TRENDER_GITHUB_API_URL": REPLAY_URL})
    services = replayed["services"]
    for name in AIRFLOW_SERVICES:
        github = json.loads(_environment(services[name])["AIRFLOW_CONN_TRENDER_GITHUB"])
        assert github["host"] == REPLAY_URL
    replay = services["replay"]
    assert urlsplit(REPLAY_URL).port == int(replay["command"][3])
    assert replay["image"] == services["airflow-scheduler"]["image"]
    mounts = _mounts(replay)
    assert mounts[AIRFLOW_HOME / "plugins"] == ("./plugins", "ro")
    assert mounts[AIRFLOW_HOME / "include"] == ("./include", "ro")
    assert _environment(replay)["PYTHONPATH"] == str(AIRFLOW_HOME / "plugins")
    for name in ("airflow-scheduler", "airflow-worker"):
        assert services[name]["depends_on"]["replay"] == {
            "condition": "service_healthy",
            "required": False,
        }


def test_mounts_give_the_dag_its_code_and_sql(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        mounts = _mounts(compose["services"][name])
        assert mounts[AIRFLOW_HOME / "dags"] == ("./dags", "ro"), name
        assert mounts[AIRFLOW_HOME / "plugins"] == ("./plugins", "ro"), name
        assert mounts[AIRFLOW_HOME / "include"] == ("./include", "ro"), name
        assert mounts[AIRFLOW_HOME / "logs"] == ("airflow-logs", "rw"), name
    # sql_dir(): <plugins>/trender/warehouse.py -> parents[2] / include / sql
    warehouse_module = AIRFLOW_HOME / "plugins" / "trender" / "warehouse.py"
    assert warehouse_module.parents[2] / "include" / "sql" == AIRFLOW_HOME / "include" / "sql"
    for source in ("dags", "plugins", "include/sql"):
        assert (PROJECT_ROOT / source).is_dir()
    assert set(compose["volumes"]) == {"postgres-data", "airflow-logs"}


def test_services_start_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in AIRFLOW_SERVICES[1:]:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}, name
        assert depends_on["airflow-init"] == {"condition": "service_completed_successfully"}


def test_postgres_holds_the_metadata_and_the_warehouse(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert postgres["environment"]["POSTGRES_DB"] == "airflow"
    mounts = _mounts(postgres)
    init_script = mounts[PurePosixPath("/docker-entrypoint-initdb.d/10-trender-warehouse.sql")]
    assert init_script == ("./deploy/postgres-init.sql", "ro")
    sql = (PROJECT_ROOT / "deploy" / "postgres-init.sql").read_text(encoding="utf-8")
    statements = [
        " ".join(sqlparse.format(statement, strip_comments=True).split()).rstrip(";").lower()
        for statement in sqlparse.split(sql)
    ]
    assert statements[0] == "create database trender"
    assert all("password" not in statement for statement in statements)
    assert postgres["ports"] == ["127.0.0.1:5433:5432"]


def test_image_is_the_official_airflow_plus_requirements(compose: dict[str, Any]) -> None:
    import airflow

    build = compose["services"]["airflow-scheduler"]["build"]
    assert build["context"] == "."
    lines = build["dockerfile_inline"].splitlines()
    assert lines[0] == f"FROM apache/airflow:{airflow.__version__}-python3.11"
    assert lines[-1] == (
        f'RUN pip install --no-cache-dir "apache-airflow=={airflow.__version__}" '
        "-r /opt/airflow/trender-requirements.txt"
    )
    for name in AIRFLOW_SERVICES:
        assert compose["services"][name]["build"] == build
        assert compose["services"][name]["image"] == "trender-airflow:3.3.2"


def test_env_example_documents_exactly_the_variables_compose_reads(
    example_env: dict[str, str],
) -> None:
    assert set(example_env) == referenced_variables(load_raw())


def test_env_example_holds_placeholders_only(example_env: dict[str, str]) -> None:
    secrets = {
        name: value
        for name, value in example_env.items()
        if any(marker in name for marker in SECRET_MARKERS)
    }
    assert set(secrets) == {
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_ADMIN_PASSWORD",
        "POSTGRES_PASSWORD",
        "TRENDER_GITHUB_TOKEN",
        "GITHUB_TOKEN_ENCRYPTION_KEY",
    }
    assert set(secrets.values()) <= PLACEHOLDERS


@pytest.mark.parametrize(
    "name",
    [
        "POSTGRES_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_ADMIN_PASSWORD",
    ],
)
def test_compose_refuses_to_start_without_a_secret(example_env: dict[str, str], name: str) -> None:
    with pytest.raises(MissingVariable, match=f"^{name}: set {name} in .env$"):
        load({key: value for key, value in example_env.items() if key != name})


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("$$HOSTNAME ${SET} $SET", env) == "$HOSTNAME value value"
    assert interpolate("${EMPTY:-fallback} ${EMPTY-kept} ${UNSET-fallback}", env) == (
        "fallback  fallback"
    )
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?needed}", env)


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    probe = subprocess.run(
        [docker or "docker", "compose", "version"], capture_output=True, check=False
    )
    if docker is None or probe.returncode != 0:
        pytest.skip("the docker compose client is not installed here")
    completed = subprocess.run(
        [
            *(docker, "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE)),
            *("--profile", "celery", "--profile", "replay", "config", "--quiet"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
