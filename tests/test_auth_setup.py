"""The setup command, scripted (argv and env) and through its prompts on a pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import shlex
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.conftest import AS_OF, PROJECT_ROOT
from tests.github import conftest as github_fixtures
from tests.github.conftest import CLIENT_ID, CLIENT_SECRET, PAT, decrypt_row, stored_row
from trender import auth_setup
from trender.github.replay import Fault, ReplayServer, oauth_error_body
from trender.vault import ENCRYPTION_KEY_ENV, fingerprint, generate_key

TOKEN_ENDPOINT = "/login/oauth/access_token"
DEVICE_ENDPOINT = "/login/device/code"
KEY_LINE = re.compile(r"^  ([A-Za-z0-9_-]{43}=)$", re.MULTILINE)
PTY_TIMEOUT_SECONDS = 60.0

# The GitHub fixtures (manual clock, replay server on it, connection helpers) live beside the
# GitHub tests; bind them here too.
manual_clock = github_fixtures.manual_clock
server = github_fixtures.server
encryption_key = github_fixtures.encryption_key
set_github_conn = github_fixtures.set_github_conn
_clean_credential_env = github_fixtures._clean_credential_env


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the command in-process, non-interactively; return its status and output."""
    out = io.StringIO()
    status = auth_setup.main(argv, env=env, console=auth_setup.Console(out, interactive=False))
    return status, out.getvalue()


def command_json(output: str, marker: str) -> dict[str, Any]:
    """Return the JSON document of the printed ``airflow connections add`` command."""
    line = next(line for line in output.splitlines() if marker in line)
    words = shlex.split(line)
    assert words[:4] == ["airflow", "connections", "add", "trender_github"]
    assert words[4] == "--conn-json"
    return json.loads(words[5])


@pytest.fixture
def device_server(server: ReplayServer) -> ReplayServer:
    """Return the replay server playing the OAuth app; device flows approve after two polls."""
    server.enable_oauth(CLIENT_ID, CLIENT_SECRET, auto_approve_after_polls=2)
    return server


def test_key_prints_a_fernet_key() -> None:
    status, output = run(["key"], {})

    assert status == 0
    key = output.splitlines()[0]
    Fernet(key.encode())  # raises unless it is a key
    assert f"Store it as {ENCRYPTION_KEY_ENV}" in output


def test_oauth_device_flow_end_to_end_generates_key_and_stores_pair(
    device_server: ReplayServer, empty_db_url: str, manual_clock: Any
) -> None:
    env = {"GITHUB_CLIENT_SECRET": CLIENT_SECRET}
    argv = ["oauth", "--api-url", device_server.url, "--client-id", CLIENT_ID,
            "--database-url", empty_db_url]  # fmt: skip

    status, output = run(argv, env)

    assert status == 0, output
    key = KEY_LINE.search(output).group(1)
    assert f"Store it as {ENCRYPTION_KEY_ENV}" in output
    assert re.search(r"enter the code [A-Z]{4}-[A-Z]{4} \(valid 15 minutes\)", output)
    assert "The new token authenticates as replay-user." in output
    assert device_server.count(DEVICE_ENDPOINT) == 1
    assert device_server.count(TOKEN_ENDPOINT) == 3  # two pending polls, then the pair
    assert manual_clock.slept == [5.0, 5.0, 5.0]  # the announced interval between polls
    with psycopg.connect(empty_db_url) as db:
        row = stored_row(db)
        access, refresh = decrypt_row(row, key)
    assert row["key_fingerprint"] == fingerprint(key)
    assert row["updated_by_run"] == "auth_setup"
    assert device_server.token_valid(access)
    assert access not in output
    assert refresh not in output
    assert command_json(output, "airflow connections add") == {
        "conn_type": "http",
        "host": device_server.url,
        "login": CLIENT_ID,
        "password": CLIENT_SECRET,
        "extra": {"auth_type": "oauth"},
    }
    variable = next(line for line in output.splitlines() if "airflow variables set" in line)
    state = json.loads(shlex.split(variable)[4])
    assert shlex.split(variable)[3] == "trender_github_oauth_token"
    assert state["credential"] == "trender_github"
    assert state["key_fingerprint"] == fingerprint(key)
    assert not {"access_token", "refresh_token"} & set(state)


def test_oauth_device_flow_honours_slow_down(
    device_server: ReplayServer, empty_db_url: str, manual_clock: Any, encryption_key: str
) -> None:
    device_server.inject(TOKEN_ENDPOINT, [Fault(200, {**oauth_error_body("slow_down"),
                                                      "interval": 10})])  # fmt: skip
    env = {"GITHUB_CLIENT_SECRET": CLIENT_SECRET, ENCRYPTION_KEY_ENV: encryption_key}
    argv = ["oauth", "--api-url", device_server.url, "--client-id", CLIENT_ID,
            "--database-url", empty_db_url, "--no-verify"]  # fmt: skip

    status, output = run(argv, env)

    assert status == 0, output
    assert "GitHub asked to poll slower; now every 10s." in output
    assert manual_clock.slept == [5.0, 10.0, 10.0, 10.0]
    assert KEY_LINE.search(output) is None  # the configured key was used
    assert device_server.count("/user") == 0


def test_oauth_device_flow_expired_code_fails_and_stores_nothing(
    device_server: ReplayServer, empty_db_url: str, manual_clock: Any, encryption_key: str
) -> None:
    device_server.inject(TOKEN_ENDPOINT, [Fault(200, oauth_error_body("expired_token"))])
    env = {"GITHUB_CLIENT_SECRET": CLIENT_SECRET, ENCRYPTION_KEY_ENV: encryption_key}
    argv = ["oauth", "--api-url", device_server.url, "--client-id", CLIENT_ID,
            "--database-url", empty_db_url]  # fmt: skip

    status, output = run(argv, env)

    assert status == 1
    assert "error: GitHub API POST /login/oauth/access_token failed: expired_token" in output
    with psycopg.connect(empty_db_url) as db:
        exists = db.execute("select to_regclass('github_oauth_tokens')").fetchone()[0]
    assert exists is None  # the table is created only when there is something to store


def test_oauth_without_secret_names_the_variable(device_server: ReplayServer) -> None:
    status, output = run(["oauth", "--api-url", device_server.url, "--client-id", CLIENT_ID], {})

    assert status == 1
    assert output == (
        "error: OAuth client secret is required: set GITHUB_CLIENT_SECRET or run on a terminal\n"
    )


def test_pat_is_checked_and_the_connection_command_printed(server: ReplayServer) -> None:
    status, output = run(["pat", "--api-url", server.url], {"GITHUB_TOKEN": PAT})

    assert status == 0
    assert "The token authenticates as replay-user." in output
    assert command_json(output, "airflow connections add") == {
        "conn_type": "http",
        "host": server.url,
        "password": PAT,
        "extra": {"auth_type": "pat"},
    }


def test_status_reports_owner_expiry_and_budgets_never_a_token(
    device_server: ReplayServer, empty_db_url: str, manual_clock: Any, encryption_key: str,
    set_github_conn: Any,
) -> None:  # fmt: skip
    env = {"GITHUB_CLIENT_SECRET": CLIENT_SECRET, ENCRYPTION_KEY_ENV: encryption_key}
    argv = ["oauth", "--api-url", device_server.url, "--client-id", CLIENT_ID,
            "--database-url", empty_db_url]  # fmt: skip
    _, setup_output = run(argv, env)
    connection = command_json(setup_output, "airflow connections add")
    set_github_conn(connection.pop("host"), **{**connection, "extra": json.dumps(
        connection["extra"])})  # fmt: skip

    status, output = run(["status", "--database-url", empty_db_url], {**env})

    assert status == 0, output
    lines = output.splitlines()
    assert lines[0] == f"credential: oauth (connection trender_github, {device_server.url})"
    assert re.fullmatch(r"access token expires: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", lines[1])
    assert lines[3].startswith(f"stored with key {fingerprint(encryption_key)}, updated ")
    assert "owner: replay-user" in lines
    assert lines[-1].startswith("rate limits: core 49")
    assert lines[-1].endswith("search 30/30, code_search 10/10 remaining")
    with psycopg.connect(empty_db_url) as db:
        access, refresh = decrypt_row(stored_row(db), encryption_key)
    assert access not in output
    assert refresh not in output


def test_rotate_key_reports_rows_it_cannot_decrypt(
    device_server: ReplayServer, empty_db_url: str, manual_clock: Any
) -> None:
    lost, new = generate_key(), generate_key()
    env = {"GITHUB_CLIENT_SECRET": CLIENT_SECRET, ENCRYPTION_KEY_ENV: lost}
    run(["oauth", "--api-url", device_server.url, "--client-id", CLIENT_ID,
         "--database-url", empty_db_url, "--no-verify"], env)  # fmt: skip

    status, output = run(["rotate-key", "--database-url", empty_db_url], {ENCRYPTION_KEY_ENV: new})

    assert status == 1
    assert "1 credential(s) cannot be decrypted with any configured key and were left " in output
    with psycopg.connect(empty_db_url) as db:
        assert stored_row(db)["key_fingerprint"] == fingerprint(lost)


def test_no_command_without_a_terminal_prints_usage() -> None:
    status, output = run([], {})

    assert status == 2
    assert output.startswith("usage: python -m trender.auth_setup")


# -- through the prompts, on a pseudo-terminal ---------------------------------------------------


@pytest.fixture
def real_clock_server() -> Iterator[ReplayServer]:
    """Serve OAuth on the real clock: the child process polls with real sleeps (1s)."""
    with ReplayServer(as_of=AS_OF) as replay:
        replay.enable_oauth(CLIENT_ID, CLIENT_SECRET, device_interval=1, auto_approve_after_polls=1)
        yield replay


class Terminal:
    """The parent side of a pseudo-terminal running the setup command."""

    def __init__(self, fd: int) -> None:
        """Read from and write to the pty master ``fd``."""
        self.fd = fd
        self.seen = ""

    def expect(self, text: str) -> None:
        """Read until ``text`` appears."""
        deadline = time.monotonic() + PTY_TIMEOUT_SECONDS
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}; saw:\n{self.seen}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"terminal closed before {text!r}; saw:\n{self.seen}"
                self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")

    def answer(self, prompt: str, reply: str) -> None:
        """Wait for a prompt and type a reply."""
        self.expect(prompt)
        os.write(self.fd, reply.encode() + b"\n")

    def finish(self, pid: int) -> int:
        """Read to the end and return the child's exit status."""
        while True:
            ready, _, _ = select.select([self.fd], [], [], PTY_TIMEOUT_SECONDS)
            if not ready:
                break
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)


def test_guided_oauth_setup_through_the_prompts(
    real_clock_server: ReplayServer, empty_db_url: str
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in (ENCRYPTION_KEY_ENV, "TRENDER_DATABASE_URL", "GITHUB_CLIENT_SECRET")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)])
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, so getpass hides input
        os.execve(sys.executable, [sys.executable, "-m", "trender.auth_setup"], env)
    terminal = Terminal(fd)
    try:
        terminal.answer("Choice [1]: ", "2")
        terminal.answer("API base URL [https://api.github.com]: ", real_clock_server.url)
        terminal.answer("OAuth client id: ", CLIENT_ID)
        terminal.answer("OAuth client secret (input hidden): ", CLIENT_SECRET)
        terminal.answer("Warehouse database URL: ", empty_db_url)
        status = terminal.finish(pid)
    finally:
        os.close(fd)

    output = terminal.seen
    assert status == 0, output
    assert CLIENT_SECRET not in output.split("Warehouse database URL")[0]  # typed, not echoed
    key = KEY_LINE.search(output).group(1)
    assert "Authorized." in output
    assert "The new token authenticates as replay-user." in output
    assert real_clock_server.count(TOKEN_ENDPOINT) == 2
    with psycopg.connect(empty_db_url) as db:
        access, _ = decrypt_row(stored_row(db), key)
    assert real_clock_server.token_valid(access)
    assert access not in output
