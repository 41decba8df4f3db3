"""Astronomer: the image, the build context, local settings, and the DAG in Astro's layout."""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.deploy import code_facts
from tests.deploy.airflow_home import bare_env

PROJECT_ROOT = code_facts.PROJECT_ROOT
SETTINGS_FILE = PROJECT_ROOT / "airflow_settings.yaml"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
BARE_HOME_SCRIPT = Path(__file__).resolve().parent / "bare_home.py"
RUNTIME_IMAGE = re.compile(r"^astrocrpublic\.azurecr\.io/runtime:(\d+\.\d+)-(\d+)$")
CONNECTION_TYPES = {"trender_postgres": "postgres", "trender_github": "http"}
PASSWORD_PLACEHOLDERS = frozenset({None, "", "change-me"})
# Shapes of real credentials: GitHub tokens, AWS access keys, PEM keys; and long random strings,
# runs of 32+ key characters mixing digits, lower and upper case (names and rules mix fewer).
TOKEN_LIKE = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
KEY_RUN = re.compile(r"[A-Za-z0-9+/_=-]{32,}")
DEPLOYMENT_FILES = (
    "airflow_settings.yaml",
    "Dockerfile",
    "packages.txt",
    ".dockerignore",
    ".env.example",
    "docker-compose.yaml",
    "deploy/postgres-init.sql",
)
MUST_SHIP = ("dags", "plugins", "include/sql", "requirements.txt", "packages.txt", "tests")
MUST_NOT_SHIP = (".env", ".git", ".venv", ".local", "airflow_settings.yaml", "dist")
SUBPROCESS_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def settings() -> dict[str, Any]:
    """Return the ``airflow`` section of airflow_settings.yaml."""
    document = yaml.safe_load(SETTINGS_FILE.read_text(encoding="utf-8"))
    assert list(document) == ["airflow"]
    return document["airflow"]


@pytest.fixture(scope="module")
def trees() -> list[ast.Module]:
    """Return the parsed task code."""
    return code_facts.project_trees()


def test_settings_declare_exactly_the_connections_the_code_reads(
    settings: dict[str, Any], trees: list[ast.Module]
) -> None:
    declared = [connection["conn_id"] for connection in settings["connections"]]
    assert sorted(declared) == sorted(code_facts.connection_ids(trees))
    assert len(declared) == len(set(declared))


def test_settings_declare_exactly_the_variables_and_pools_the_code_reads(
    settings: dict[str, Any], trees: list[ast.Module]
) -> None:
    variables = {variable["variable_name"] for variable in settings["variables"]}
    pools = {pool["pool_name"] for pool in settings["pools"]}
    assert variables == code_facts.variable_names(trees)
    assert "<computed>" not in variables
    assert pools == code_facts.pool_names(trees) == set()


def test_variables_hold_empty_json_placeholders(settings: dict[str, Any]) -> None:
    for variable in settings["variables"]:
        assert json.loads(variable["variable_value"]) == {}, variable["variable_name"]


def test_connection_types_and_hosts(settings: dict[str, Any]) -> None:
    from trender.hooks.github import DEFAULT_API_URL, TrenderGitHubHook

    connections = {connection["conn_id"]: connection for connection in settings["connections"]}
    assert {conn_id: conn["conn_type"] for conn_id, conn in connections.items()} == (
        CONNECTION_TYPES
    )
    assert TrenderGitHubHook.conn_type == connections["trender_github"]["conn_type"]
    assert connections["trender_github"]["conn_host"] == DEFAULT_API_URL
    assert connections["trender_postgres"]["conn_port"] == 5432
    for connection in connections.values():
        assert connection["conn_password"] in PASSWORD_PLACEHOLDERS, connection["conn_id"]


def test_derivations_find_what_they_look_for() -> None:
    source = ast.parse(
        "from airflow.sdk import Variable\n"
        "TOKEN_CONN_ID = 'token_api'\n"
        "STATE_KEY = 'oauth_state'\n"
        "Variable.get(STATE_KEY)\n"
        "Variable.set('cursor', 1)\n"
        "op = Op(postgres_conn_id='other_db', pool='github_api', sql='{{ var.json.limits }}')\n"
        "import os\n"
        "name = 'FROM_CONSTANT'\n"
        "os.environ.get(name); os.getenv('FROM_GETENV'); os.environ['FROM_INDEX']\n"
    )
    assert code_facts.connection_ids([source]) == {"token_api", "other_db"}
    assert code_facts.variable_names([source]) == {"oauth_state", "cursor", "limits"}
    assert code_facts.pool_names([source]) == {"github_api"}
    assert code_facts.environment_names([source]) == {
        "FROM_CONSTANT",
        "FROM_GETENV",
        "FROM_INDEX",
    }


@pytest.mark.parametrize("name", DEPLOYMENT_FILES)
def test_deployment_files_hold_no_credentials(name: str) -> None:
    assert _credentials((PROJECT_ROOT / name).read_text(encoding="utf-8")) == []


def _credentials(text: str) -> list[str]:
    random_runs = [
        run
        for run in KEY_RUN.findall(text)
        if all(re.search(kind, run) for kind in ("[0-9]", "[a-z]", "[A-Z]"))
    ]
    return TOKEN_LIKE.findall(text) + random_runs


def test_credential_check_recognises_credentials() -> None:
    samples = [
        "ghp_" + "a1B2" * 9,
        "github_pat_" + "x9" * 20,
        "AKIA" + "Q" * 16,
        "-----BEGIN RSA PRIVATE KEY-----",
        "dGhpcyBpcyBub3QgYSByZWFsIGtleSBidXQgbG9va3MgbGlrZSBvbmU=",
    ]
    assert [sample for sample in samples if not _credentials(sample)] == []
    assert _credentials("postgresql://airflow:change-me@postgres:5432/trender") == []
    assert _credentials("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION: " + "-" * 60) == []


def test_dockerfile_is_the_astro_runtime_of_the_pinned_airflow() -> None:
    import airflow

    instructions = [
        line.strip()
        for line in (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(instructions) == 1
    keyword, image = instructions[0].split()
    assert keyword == "FROM"
    match = RUNTIME_IMAGE.match(image)
    assert match is not None, image
    assert match.group(1) == ".".join(airflow.__version__.split(".")[:2])


def test_packages_txt_lists_no_system_packages() -> None:
    lines = (PROJECT_ROOT / "packages.txt").read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line.strip() and not line.startswith("#")] == []


def _dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(relative: PurePosixPath, patterns: list[str]) -> bool:
    """Tell whether .dockerignore keeps a path out of the build context (no ! patterns)."""
    parts = relative.parts
    for pattern in patterns:
        pattern = pattern.strip("/")
        for end in range(1, len(parts) + 1):
            if fnmatch.fnmatchcase("/".join(parts[:end]), pattern):
                return True
            if pattern.startswith("**/") and any(
                fnmatch.fnmatchcase("/".join(parts[start:end]), pattern[3:]) for start in range(end)
            ):
                return True
    return False


def test_dockerignore_keeps_secrets_out_and_the_project_in() -> None:
    patterns = _dockerignore_patterns()
    assert [pattern for pattern in patterns if pattern.startswith("!")] == []
    assert [name for name in MUST_NOT_SHIP if not _ignored(PurePosixPath(name), patterns)] == []
    assert [name for name in MUST_SHIP if _ignored(PurePosixPath(name), patterns)] == []
    assert _ignored(PurePosixPath("plugins/trender/__pycache__/settings.cpython-311.pyc"), patterns)


def _copy_build_context(destination: Path) -> None:
    """Copy the project as Astro's ``COPY . .`` sees it, honouring .dockerignore."""
    patterns = _dockerignore_patterns()
    for folder, dirnames, filenames in os.walk(PROJECT_ROOT):
        relative_folder = PurePosixPath(Path(folder).relative_to(PROJECT_ROOT).as_posix())
        dirnames[:] = [
            name for name in sorted(dirnames) if not _ignored(relative_folder / name, patterns)
        ]
        for name in filenames:
            relative = relative_folder / name
            if not _ignored(relative, patterns):
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, target)


def test_dag_parses_in_the_astro_layout(tmp_path: Path) -> None:
    home = tmp_path / "usr" / "local" / "airflow"  # Astro Runtime's AIRFLOW_HOME
    _copy_build_context(home)
    assert not (home / ".venv").exists()
    assert not (home / "airflow_settings.yaml").exists()
    env = bare_env(home)
    result_file = tmp_path / "result.json"
    completed = subprocess.run(
        [sys.executable, "-P", str(BARE_HOME_SCRIPT), str(result_file)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(result_file.read_text(encoding="utf-8"))
    assert result["import_errors"] == {}
    assert result["dag_ids"] == ["trender_daily"]
    # Airflow itself put the plugins folder on sys.path: no PYTHONPATH was given.
    assert result["trender_file"] == str(home / "plugins" / "trender" / "__init__.py")
    assert result["sql_dir"] == str(home / "include" / "sql")
