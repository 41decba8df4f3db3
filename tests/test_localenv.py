"""The embedded PostgreSQL of `make demo` / `make test`, as root and as a normal user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import localenv
import psycopg
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # a Python every account may run (the venv's may not)


def _unprivileged_can_run_postgres() -> bool:
    """Tell whether the account the embedded server uses as root can run its binaries here."""
    if os.geteuid() != 0:
        return True
    account = pwd.getpwnam(localenv.UNPRIVILEGED_USER)
    binary = localenv.EmbeddedPostgres(Path(tempfile.gettempdir())).bin_dir / "postgres"
    probe = subprocess.run(
        [str(binary), "--version"],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_reachable_binaries = pytest.mark.skipif(
    not _unprivileged_can_run_postgres(),
    reason="this checkout lies in a private folder: as root the embedded server cannot run",
)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """Return a folder every account can reach (pytest's own tmp folders are private)."""
    path = Path(tempfile.mkdtemp(prefix="trender-pg-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_configured_url_prefers_trender_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENDER_DATABASE_URL", "postgresql://u@db.example:5432/w")
    monkeypatch.setenv("AIRFLOW_CONN_TRENDER_POSTGRES", "postgres://other@h/x")
    assert localenv.configured_url() == "postgresql://u@db.example:5432/w"


def test_configured_url_reads_the_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRENDER_DATABASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_TRENDER_POSTGRES", "postgres://other@h:6543/x")
    assert localenv.configured_url() == "postgresql://other@h:6543/x"
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRENDER_POSTGRES",
        '{"conn_type": "postgres", "host": "h", "login": "u", "password": "p", "port": 5, '
        '"schema": "w"}',
    )
    assert localenv.configured_url() == "postgresql://u:p@h:5/w"


@needs_reachable_binaries
def test_a_private_folder_fails_with_a_message_saying_what_to_do(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands the server to another account")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(localenv.LocalEnvError, match=r"cannot reach .* TRENDER_DATABASE_URL"):
        localenv.EmbeddedPostgres(private / "pg").start()


def test_redact_hides_the_password() -> None:
    assert localenv.redact("postgresql://u:secret@h:5/w") == "postgresql://u:***@h:5/w"


@needs_reachable_binaries
def test_embedded_server_starts_serves_and_stops(open_dir: Path) -> None:
    server = localenv.EmbeddedPostgres(open_dir / "pg")
    url = server.start()
    try:
        assert server.is_running()
        assert server.start() == url  # a running server is reused
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_database()").fetchone() == ("trender",)
        if os.geteuid() == 0:
            owner = (open_dir / "pg" / "data").stat().st_uid
            assert owner == pwd.getpwnam(localenv.UNPRIVILEGED_USER).pw_uid
    finally:
        server.stop()
    assert not server.is_running()


@needs_reachable_binaries
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a normal user")
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason=f"{SYSTEM_PYTHON} is not installed")
def test_embedded_server_works_for_a_normal_user(open_dir: Path) -> None:
    account = pwd.getpwnam(localenv.UNPRIVILEGED_USER)
    home = open_dir / "user"
    home.mkdir()
    os.chown(home, account.pw_uid, account.pw_gid)
    site_packages = next((PROJECT_ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import localenv, pathlib, psycopg;"
        "s = localenv.EmbeddedPostgres(pathlib.Path(sys.argv[2]));"
        "u = s.start(); print(psycopg.connect(u).execute('select 1').fetchone()[0]); s.stop()"
    )
    done = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", script, str(PROJECT_ROOT / "scripts"), str(home / "pg")],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "PYTHONPATH": str(site_packages),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
