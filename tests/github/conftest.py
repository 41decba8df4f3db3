"""Fixtures for GitHub access tests: a manual clock, the replay server on it, connections."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from tests.conftest import AS_OF
from trender import settings as cfg
from trender.github import clock as clocks
from trender.github.clock import ManualClock
from trender.github.replay import ReplayServer
from trender.vault import ENCRYPTION_KEY_ENV, Vault, generate_key

CLIENT_ID = "Iv1.replay0client0id"
CLIENT_SECRET = "replay-client-secret-0f3c9a"
PAT = "ghp_replayPersonalAccessToken0123456789"
RUN_ID = "manual__fault_matrix"
ENV_NAMES = (
    "GITHUB_ACCESS_TOKEN",
    "GITHUB_REFRESH_TOKEN",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
    ENCRYPTION_KEY_ENV,
)


@dataclass
class FakeTaskInstance:
    """The task instance attributes the fetch tasks and their spans read."""

    task_id: str = "fetch_language_repos"
    map_index: int = 0
    try_number: int = 1
    start_date: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def task_context(run_id: str = RUN_ID, **ti: Any) -> dict[str, Any]:
    """Return the context a fetch task receives, as far as it reads it."""
    return {"ti": FakeTaskInstance(**ti), "run_id": run_id}


def run_settings(
    run_id: str = RUN_ID, day: dt.date = AS_OF, params: dict | None = None
) -> dict[str, Any]:
    """Return the resolved run settings XCom of a dev-mode run (Python, 5 repositories)."""
    moment = dt.datetime.combine(day, dt.time(14), tzinfo=dt.UTC)
    return cfg.resolve(
        params if params is not None else {"dev_mode": True},
        {},
        dag_id="trender_daily",
        run_id=run_id,
        logical_date=moment,
        run_after=moment,
    ).to_xcom()


@pytest.fixture(autouse=True)
def _clean_credential_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def manual_clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """Return a clock that sleeps instantly, installed as the clients' default."""
    clock = ManualClock(time.time())
    monkeypatch.setattr(clocks, "DEFAULT_CLOCK", clock)
    return clock


@pytest.fixture
def server(manual_clock: ManualClock) -> Iterator[ReplayServer]:
    """Start the replay server on the manual clock."""
    with ReplayServer(as_of=AS_OF, clock=manual_clock.time) as replay:
        yield replay


@pytest.fixture
def encryption_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Set a fresh GITHUB_TOKEN_ENCRYPTION_KEY and return it."""
    key = generate_key()
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, key)
    return key


@pytest.fixture
def set_github_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict]:
    """Return a function that defines the trender_github connection through its env var."""

    def define(host: str, **fields: Any) -> dict:
        document = {"conn_type": "http", "host": host, **fields}
        monkeypatch.setenv("AIRFLOW_CONN_TRENDER_GITHUB", json.dumps(document))
        return document

    return define


@pytest.fixture
def oauth_server(server: ReplayServer) -> ReplayServer:
    """Return the replay server playing the OAuth app (no revocation of replaced tokens)."""
    server.enable_oauth(CLIENT_ID, CLIENT_SECRET, revoke_replaced_access=False)
    return server


def iso(moment: float) -> str:
    """Return a UNIX time as an ISO 8601 UTC string."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


def stored_row(db: psycopg.Connection, name: str = "trender_github") -> dict[str, Any] | None:
    """Return the credential row as stored."""
    cur = db.execute("select * from github_oauth_tokens where credential_name = %s", (name,))
    row = cur.fetchone()
    db.commit()
    if row is None:
        return None
    return dict(zip([column.name for column in cur.description], row, strict=True))


def decrypt_row(row: dict[str, Any], key: str) -> tuple[str | None, str | None]:
    """Return the access and refresh tokens of a stored row."""
    vault = Vault([key])
    access, refresh = row["access_token_encrypted"], row["refresh_token_encrypted"]
    return (vault.decrypt(access) if access else None, vault.decrypt(refresh) if refresh else None)
