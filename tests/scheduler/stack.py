"""
A real Airflow deployment for tests: api-server, scheduler and dag-processor on PostgreSQL.

Each service is its own ``airflow`` process (and process group) with its output in a file, talking
to the others only through the metadata database and the api-server on a loopback port, as in
production. Tasks run under the LocalExecutor in separate processes and reach Airflow only
through the Task Execution API, so anything ``airflow dags test`` lets slip shows up here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
import requests
from cryptography.fernet import Fernet
from psycopg import sql

from tests.conftest import _fresh_database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "trender_daily"
HOST = "127.0.0.1"
ADMIN_USER = "admin"
META_DATABASE_PREFIX = "trender_sched_meta_"
# At most 4 tasks of the DAG run at once on a 2-core machine: enough for the three mapped fetches
# and the render search together.
MAX_ACTIVE_TASKS = 4
# Executor slots: a LocalExecutor worker stays busy after its task process ends until the
# supervisor's next wake-up ([workers] min_heartbeat_interval, 5 s), so with only 4 slots the
# mapped fetches queue behind finished tasks' workers and run one after the other.
PARALLELISM = 8
# Seconds between the dag-processor's scans of the DAGs folder (default 300).
DAG_PROCESSOR_REFRESH_SECONDS = 5
MIGRATE_TIMEOUT_SECONDS = 300  # `airflow db migrate` on an empty PostgreSQL takes about 10 s
READY_TIMEOUT_SECONDS = 120  # api-server up and the DAG parsed
RUN_TIMEOUT_SECONDS = 300  # one full run takes 20-35 s under the LocalExecutor on 2 cores
STOP_TIMEOUT_SECONDS = 30  # a service's graceful shutdown, before SIGKILL
HTTP_TIMEOUT_SECONDS = 10
POLL_SECONDS = 1.0
LOG_TAIL_LINES = 30
# About GitHub's own answer time. Without it the replay server answers at once and a fetch is
# over in well under a second, shorter than the spread of its siblings' process start-ups on a
# busy 2-core machine, so whether the mapped fetches overlap would be left to chance.
REPLAY_LATENCY_SECONDS = 0.2
JWT_SECRET_BYTES = 64  # PyJWT warns about HS512 keys shorter than 64 bytes (RFC 7518 3.2)
FINISHED_RUN_STATES = frozenset({"success", "failed"})
# Fake secrets: values the code may read, each distinctive enough to find in any log.
GITHUB_TOKEN = "ghp_SCHEDULERTEST0123456789abcdef"
FAKE_ENV_SECRETS = {
    "GITHUB_ACCESS_TOKEN": "gho_SCHEDULERTESTaccess0123456789",
    "GITHUB_REFRESH_TOKEN": "ghr_SCHEDULERTESTrefresh0123456789",
    "GITHUB_CLIENT_SECRET": "SCHEDULERTESTclientsecret0123456789abcdef",
}
FAKE_ENV_PLAIN = {"GITHUB_CLIENT_ID": "Iv1.schedulertest0001"}
WAREHOUSE_PASSWORD = "SCHEDULERTESTwarehouse0123456789"


@dataclasses.dataclass
class Service:
    """One Airflow process started by the stack."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclasses.dataclass
class AirflowStack:
    """A running deployment: where it lives, how to reach it and which secrets it was given."""

    home: Path
    base_url: str
    env: dict[str, str]
    warehouse_url: str
    replay: Any
    services: list[Service]
    secrets: dict[str, str]
    admin_password: str

    @property
    def logs_dir(self) -> Path:
        """Return the folder holding task and dag-processor logs."""
        return self.home / "logs"

    def log_files(self) -> list[Path]:
        """Return every log file: Airflow's log folder and each service's output."""
        files = sorted(path for path in self.logs_dir.rglob("*") if path.is_file())
        return files + [service.log for service in self.services]

    def diagnostics(self) -> str:
        """Return the last lines of every log file, to explain a failure."""
        parts = []
        for path in self.log_files():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            parts.append(f"==> {path} <==\n" + "\n".join(lines[-LOG_TAIL_LINES:]))
        return "\n\n".join(parts)

    def check_services(self) -> None:
        """Raise when a service has exited, with its output."""
        for service in self.services:
            code = service.process.poll()
            if code is not None:
                tail = service.log.read_text(encoding="utf-8", errors="replace")[-4000:]
                raise RuntimeError(f"airflow {service.name} exited with {code}:\n{tail}")

    def client(self) -> ApiClient:
        """Return a REST client logged in as the admin user."""
        return ApiClient(self.base_url, fetch_token(self.base_url, ADMIN_USER, self.admin_password))


class ApiClient:
    """A small client for the api-server's REST API v2, with a bearer token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request to a path of the api-server."""
        kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
        return self._session.request(method, f"{self.base_url}{path}", **kwargs)

    def json(self, method: str, path: str, expected: int = 200, **kwargs: Any) -> Any:
        """Send one request and return its JSON body, failing on any other status."""
        response = self.request(method, path, **kwargs)
        if response.status_code != expected:
            raise AssertionError(
                f"{method} {path} answered {response.status_code}, not {expected}: "
                f"{response.text[:2000]}"
            )
        return response.json()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()


def fetch_token(base_url: str, username: str, password: str) -> str:
    """Return a JWT from the simple auth manager's token endpoint."""
    response = requests.post(
        f"{base_url}/auth/token",
        json={"username": username, "password": password},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    if response.status_code != 201:
        raise AssertionError(f"POST /auth/token answered {response.status_code}: {response.text}")
    return response.json()["access_token"]


def run_path(run_id: str) -> str:
    """Return the REST path of one run of the DAG."""
    return f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], Any], what: str, timeout: float, check: Callable[[], None]
) -> Any:
    """Poll ``condition`` until it returns a truthy value; ``check`` may raise to stop early."""
    deadline = time.monotonic() + timeout
    while True:
        check()
        with contextlib.suppress(requests.RequestException):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def _server_database_url(server_url: str, name: str) -> str:
    return f"{server_url.rpartition('/')[0]}/{name}"


@contextlib.contextmanager
def metadata_database(server_url: str) -> Iterator[str]:
    """Create a new, empty metadata database on the server; drop it afterwards."""
    name = f"{META_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    admin = _server_database_url(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield _server_database_url(server_url, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def warehouse_connection_url(url: str) -> tuple[str, str | None]:
    """
    Return the warehouse URL for the Airflow connection, and its password to look for in logs.

    A server that trusts loopback clients ignores the password, so a URL without one gets a fake
    password: the log scan then proves the warehouse connection's password is masked too.
    """
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    user = parts.username or "postgres"
    host = parts.hostname or HOST
    port = f":{parts.port}" if parts.port else ""
    candidate = parts._replace(netloc=f"{user}:{WAREHOUSE_PASSWORD}@{host}{port}").geturl()
    try:
        psycopg.connect(candidate, connect_timeout=HTTP_TIMEOUT_SECONDS).close()
    except psycopg.OperationalError:  # the server checks passwords: keep the URL as it is
        return url, None
    return candidate, WAREHOUSE_PASSWORD


def airflow_env(
    home: Path, meta_url: str, port: int, warehouse_url: str, github_url: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Return the environment of every Airflow process, and the secrets it holds by name."""
    fernet_key = Fernet.generate_key().decode("ascii")
    jwt_secret = secrets.token_urlsafe(JWT_SECRET_BYTES)
    api_secret_key = secrets.token_urlsafe(32)
    base_url = f"http://{HOST}:{port}"
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "GITHUB_", "TRENDER_", "DEV_"))
    }
    env = {
        **inherited,
        **FAKE_ENV_SECRETS,
        **FAKE_ENV_PLAIN,
        "GITHUB_TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode("ascii"),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(MAX_ACTIVE_TASKS),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": fernet_key,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url.replace(
            "postgresql://", "postgresql+psycopg://", 1
        ),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": api_secret_key,
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(DAG_PROCESSOR_REFRESH_SECONDS),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        # Only the test's manual run: unpausing a daily DAG with catchup=False would otherwise
        # create a scheduled run for the latest 14:00 UTC at once, racing the manual one.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW_CONN_TRENDER_POSTGRES": warehouse_url,
        "AIRFLOW_CONN_TRENDER_GITHUB": json.dumps(
            {"conn_type": "http", "host": github_url, "password": GITHUB_TOKEN}
        ),
    }
    held = {
        "trender_github password": GITHUB_TOKEN,
        **{f"env {name}": value for name, value in FAKE_ENV_SECRETS.items()},
        "env GITHUB_TOKEN_ENCRYPTION_KEY": env["GITHUB_TOKEN_ENCRYPTION_KEY"],
        "fernet key": fernet_key,
        "JWT secret": jwt_secret,
        "api secret key": api_secret_key,
    }
    return env, held


def migrate(env: Mapping[str, str], log: Path) -> None:
    """Create the metadata database's tables with ``airflow db migrate``."""
    with log.open("wb") as out:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=MIGRATE_TIMEOUT_SECONDS,
            check=False,
            start_new_session=True,
        )
    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"airflow db migrate exited with {result.returncode}:\n{tail}")


def start_service(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> Service:
    """Start one ``airflow`` command in its own process group, its output in a file."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=log_dir,
            start_new_session=True,
        )
    return Service(name, process, log)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user took the id: ours are gone
        return False
    return True


def stop_service(service: Service) -> None:
    """Stop a service's whole process group: SIGTERM, then SIGKILL after a timeout."""
    pgid = service.process.pid  # start_new_session made the service its group's leader
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    # poll() reaps the leader, so the group check then sees only the processes it started
    while (service.process.poll() is None or _group_alive(pgid)) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS / 4)
    if service.process.poll() is None or _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        service.process.wait(timeout=STOP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def airflow_stack(server_url: str, work_dir: Path) -> Iterator[AirflowStack]:
    """Run api-server, scheduler and dag-processor until the block ends, then remove it all."""
    from trender.github.replay import ReplayServer

    home = work_dir / "airflow"
    service_logs = work_dir / "services"
    home.mkdir()
    service_logs.mkdir()
    with contextlib.ExitStack() as cleanup:
        meta_url = cleanup.enter_context(metadata_database(server_url))
        warehouse_db = cleanup.enter_context(_fresh_database(server_url))
        warehouse_url, warehouse_password = warehouse_connection_url(warehouse_db)
        # A manual run is dated by its run_after, now: serve the snapshot as of today (UTC).
        replay = cleanup.enter_context(
            ReplayServer(
                as_of=dt.datetime.now(dt.UTC).date(), latency_seconds=REPLAY_LATENCY_SECONDS
            )
        )
        port = free_port()
        env, held = airflow_env(home, meta_url, port, warehouse_url, replay.url)
        if warehouse_password:
            held["trender_postgres password"] = warehouse_password
        admin_password = secrets.token_urlsafe(16)
        held["admin password"] = admin_password
        (home / "passwords.json").write_text(json.dumps({ADMIN_USER: admin_password}) + "\n")

        migrate(env, service_logs / "db-migrate.log")
        services: list[Service] = []
        stack = AirflowStack(
            home=home,
            base_url=f"http://{HOST}:{port}",
            env=env,
            warehouse_url=warehouse_url,
            replay=replay,
            services=services,
            secrets=held,
            admin_password=admin_password,
        )
        commands = {
            "api-server": ["api-server", "--host", HOST, "--port", str(port)],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
        }
        for name, args in commands.items():
            service = start_service(name, args, env, service_logs)
            services.append(service)
            cleanup.callback(stop_service, service)
        try:
            wait_until(
                lambda: (
                    requests.get(
                        f"{stack.base_url}/api/v2/monitor/health", timeout=HTTP_TIMEOUT_SECONDS
                    ).ok
                ),
                "the api-server did not answer its health check",
                READY_TIMEOUT_SECONDS,
                stack.check_services,
            )
            client = stack.client()
            cleanup.callback(client.close)
            wait_until(
                lambda: client.request("GET", f"/api/v2/dags/{DAG_ID}").ok,
                f"the dag-processor did not parse {DAG_ID}",
                READY_TIMEOUT_SECONDS,
                stack.check_services,
            )
        except (TimeoutError, RuntimeError):
            print(stack.diagnostics())
            raise
        yield stack


def trigger_and_wait(stack: AirflowStack) -> dict[str, Any]:
    """Trigger the DAG as the UI does (no logical date) and return the finished run."""
    client = stack.client()
    try:
        dag = client.json("GET", f"/api/v2/dags/{DAG_ID}")
        if dag["is_paused"]:
            client.json("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
        run = client.json(
            "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}}
        )
        try:
            return wait_until(
                lambda: (
                    latest
                    if (latest := client.json("GET", run_path(run["dag_run_id"])))["state"]
                    in FINISHED_RUN_STATES
                    else None
                ),
                f"run {run['dag_run_id']} did not finish",
                RUN_TIMEOUT_SECONDS,
                stack.check_services,
            )
        except (TimeoutError, RuntimeError):
            print(stack.diagnostics())
            raise
    finally:
        client.close()


def task_instances(stack: AirflowStack, run_id: str) -> list[dict[str, Any]]:
    """Return every task instance of a run, from the REST API."""
    client = stack.client()
    try:
        body = client.json("GET", f"{run_path(run_id)}/taskInstances", params={"limit": 100})
    finally:
        client.close()
    assert body["total_entries"] == len(body["task_instances"])
    return body["task_instances"]
