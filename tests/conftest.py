"""
Shared fixtures: a real PostgreSQL per test, the replay server, and an Airflow home.

Tests use the server named by ``TRENDER_DATABASE_URL`` (``make test`` provides one, starting an
embedded PostgreSQL when nothing is configured) and create their own databases on it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_TEST_ROOT = PROJECT_ROOT / ".local" / "airflow-test"
# Each test session gets its own Airflow home: SQLite does not take concurrent sessions well.
AIRFLOW_HOME = AIRFLOW_TEST_ROOT / f"session-{os.getpid()}"
AIRFLOW_TEMPLATE_DB = AIRFLOW_TEST_ROOT / "template.db"
SHARED_CORPUS = PROJECT_ROOT.parent / "shared" / "github-corpus"
TEST_DATABASE_PREFIX = "trender_test_"
AS_OF = dt.date(2026, 12, 3)  # the date tests replay the snapshot as

# Airflow reads its configuration at import: point it at a project-local home first.
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}"
os.environ.pop("DEV_MODE", None)
os.environ.pop("DEV_REPO_LIMIT", None)
sys.path.insert(0, str(PROJECT_ROOT / "scripts"))


def _migrate_airflow_metadata() -> None:
    """Copy a migrated metadata database into this session's home, migrating it once."""
    import fcntl
    import shutil

    import airflow

    AIRFLOW_TEST_ROOT.mkdir(parents=True, exist_ok=True)
    stamp = AIRFLOW_TEST_ROOT / "template.version"
    with open(AIRFLOW_TEST_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.exists() and stamp.read_text().strip() == airflow.__version__):
            AIRFLOW_TEMPLATE_DB.unlink(missing_ok=True)
            env = {
                **os.environ,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_TEMPLATE_DB}",
            }
            subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                check=True,
                stdout=subprocess.DEVNULL,
                env=env,
            )
            stamp.write_text(airflow.__version__)
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(AIRFLOW_TEMPLATE_DB, AIRFLOW_HOME / "airflow.db")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove this session's Airflow home."""
    import shutil

    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Return the URL of a PostgreSQL server the tests may create databases on."""
    import localenv

    with localenv.warehouse() as url:
        yield url


def _database_url(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def _fresh_database(server_url: str, template: str | None = None) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    admin = _database_url(server_url, "postgres")
    create = sql.SQL("create database {}").format(sql.Identifier(name))
    if template:
        create += sql.SQL(" template {}").format(sql.Identifier(template))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield _database_url(server_url, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def schema_template(pg_server_url: str) -> Iterator[str]:
    """Return the name of a database holding the warehouse schema, to copy for each test."""
    import psycopg

    from trender import warehouse

    with _fresh_database(pg_server_url) as url:
        with psycopg.connect(url) as conn:
            warehouse.migrate(conn)
        yield url.rpartition("/")[2]


@pytest.fixture
def empty_db_url(pg_server_url: str) -> Iterator[str]:
    """Return the URL of a new, empty database, dropped after the test."""
    with _fresh_database(pg_server_url) as url:
        yield url


@pytest.fixture
def warehouse_url(
    pg_server_url: str, schema_template: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Return a new database with the warehouse schema, also as the Airflow connection."""
    with _fresh_database(pg_server_url, template=schema_template) as url:
        monkeypatch.setenv("AIRFLOW_CONN_TRENDER_POSTGRES", url)
        yield url


@pytest.fixture
def db(warehouse_url: str) -> Iterator[object]:
    """Return a psycopg connection to the test's warehouse."""
    import psycopg

    with psycopg.connect(warehouse_url) as conn:
        yield conn


@pytest.fixture
def replay_server() -> Iterator[object]:
    """Start the replay server on a free loopback port, serving the snapshot as of AS_OF."""
    from trender.github.replay import ReplayServer

    with ReplayServer(as_of=AS_OF) as server:
        yield server


@pytest.fixture
def github_conn(replay_server: object, monkeypatch: pytest.MonkeyPatch) -> object:
    """Point the ``trender_github`` connection at the replay server."""
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_TRENDER_GITHUB", json.dumps({"conn_type": "http", "host": replay_server.url})
    )
    return replay_server


@contextlib.contextmanager
def dag_environment(server_url: str, template: str) -> Iterator[tuple[str, object]]:
    """Give a DAG run a fresh warehouse and a replay server, as Airflow connections."""
    import json

    from trender.github.replay import ReplayServer

    with (
        _fresh_database(server_url, template=template) as url,
        ReplayServer(as_of=AS_OF) as server,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("AIRFLOW_CONN_TRENDER_POSTGRES", url)
        env.setenv(
            "AIRFLOW_CONN_TRENDER_GITHUB", json.dumps({"conn_type": "http", "host": server.url})
        )
        yield url, server


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Make sure the Airflow metadata database exists (SQLite in .local/airflow-test)."""
    _migrate_airflow_metadata()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """Return the shared GitHub corpus folder, skipping when it is absent."""
    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"GitHub corpus not found at {SHARED_CORPUS}")
    return SHARED_CORPUS
