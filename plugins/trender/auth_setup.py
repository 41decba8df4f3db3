"""Set up Trender's GitHub credentials: ``python -m trender.auth_setup [command]``.

Commands (run without one on a terminal for a guided setup):

- ``key``: print a new Fernet key to store as ``GITHUB_TOKEN_ENCRYPTION_KEY``.
- ``pat``: check a personal access token and print the connection command.
- ``oauth``: authorize through GitHub's device flow (no callback server needed), store the token
  pair encrypted in the warehouse, and print the connection and Variable commands.
- ``status``: report the credential type, its owner, expiry times and rate budgets.
- ``rotate-key``: re-encrypt every stored credential with the newest key of
  ``GITHUB_TOKEN_ENCRYPTION_KEY`` (``new,old``).

Secrets come from environment variables (scriptable) or hidden prompts (interactive); tokens are
never printed. The warehouse is ``--database-url`` or ``TRENDER_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from trender import vault as vaults
from trender import warehouse
from trender.github.auth import (
    REAUTHORIZE_HINT,
    VARIABLE_KEY,
    CredentialStore,
    DeviceAuthorization,
    TokenEndpoint,
    default_token_url,
    dumps_state,
    token_state,
)
from trender.github.client import GitHubClient, StaticToken
from trender.github.errors import GitHubError
from trender.hooks.github import AUTH_OAUTH, AUTH_PAT, TrenderGitHubHook, describe_budgets

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_CONN_ID = "trender_github"
DATABASE_URL_ENV = "TRENDER_DATABASE_URL"
TOKEN_ENV = "GITHUB_TOKEN"  # where `pat` reads a token from when not prompting
CLIENT_SECRET_ENV = "GITHUB_CLIENT_SECRET"
SETUP_RUN = "auth_setup"  # updated_by_run of rows this command writes
EXIT_USAGE = 2
EXIT_FAILED = 1


class SetupError(Exception):
    """A setup step failed in a way the user can fix; the message says how."""


class Console:
    """Input and output of the command, swappable for tests."""

    def __init__(
        self,
        out: TextIO | None = None,
        interactive: bool | None = None,
        ask: Callable[[str], str] = input,
        ask_secret: Callable[[str], str] = getpass.getpass,
    ) -> None:
        """Use stdout and the terminal unless told otherwise."""
        self.out = out or sys.stdout
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self._ask = ask
        self._ask_secret = ask_secret

    def say(self, text: str = "") -> None:
        """Print a line."""
        print(text, file=self.out, flush=True)

    def value(self, label: str, given: str | None, default: str | None = None) -> str:
        """Return ``given``, else ask (interactive), else the default, else fail."""
        if given:
            return given
        if self.interactive:
            suffix = f" [{default}]" if default else ""
            answer = self._ask(f"{label}{suffix}: ").strip()
            if answer or default:
                return answer or str(default)
        elif default:
            return default
        raise SetupError(f"{label} is required")

    def secret(self, label: str, env_name: str, env: Mapping[str, str]) -> str:
        """Return a secret from ``env_name``, else a hidden prompt, else fail."""
        value = env.get(env_name)
        if value:
            return value
        if self.interactive:
            answer = self._ask_secret(f"{label} (input hidden): ").strip()
            if answer:
                return answer
        raise SetupError(f"{label} is required: set {env_name} or run on a terminal")


def _database_url(args: argparse.Namespace, env: Mapping[str, str], console: Console) -> str:
    return console.value(
        "Warehouse database URL", args.database_url or env.get(DATABASE_URL_ENV) or None
    )


def _connect_factory(url: str) -> Callable[[], Any]:
    import psycopg

    return lambda: psycopg.connect(url)


def _ensure_table(url: str) -> None:
    connect = _connect_factory(url)
    conn = connect()
    try:
        warehouse.migrate(conn)
    finally:
        conn.close()


def _vault(env: dict[str, str], console: Console) -> vaults.Vault:
    """Return the vault of the configured key, generating (and printing) one when none is set."""
    keys = vaults.parse_keys(env.get(vaults.ENCRYPTION_KEY_ENV))
    if not keys:
        key = vaults.generate_key()
        console.say(f"No {vaults.ENCRYPTION_KEY_ENV} is set; generated a new key:")
        console.say(f"  {key}")
        console.say(
            f"Store it as {vaults.ENCRYPTION_KEY_ENV} wherever tasks run (a secret, like the "
            "connection); without it the stored credential cannot be read."
        )
        env[vaults.ENCRYPTION_KEY_ENV] = key
        keys = [key]
    try:
        return vaults.Vault(keys)
    except vaults.VaultError as error:
        raise SetupError(str(error)) from None


def _who(api_url: str, token: str) -> str:
    with GitHubClient(api_url, StaticToken(token), max_retries=1) as client:
        user = client.get_json("/user")
    login = user.get("login") if isinstance(user, dict) else None
    if not login:
        raise SetupError("GitHub answered /user without a login")
    return str(login)


def connection_command(conn_id: str, fields: Mapping[str, Any]) -> str:
    """Return the exact ``airflow connections add`` command for these connection fields."""
    document = {key: value for key, value in fields.items() if value not in (None, "", {})}
    return (
        f"airflow connections add {shlex.quote(conn_id)} "
        f"--conn-json {shlex.quote(json.dumps(document, separators=(',', ':')))}"
    )


def variable_command(state: Mapping[str, Any]) -> str:
    """Return the ``airflow variables set`` command that mirrors the token state."""
    return f"airflow variables set {VARIABLE_KEY} {shlex.quote(dumps_state(state))}"


def cmd_key(args: argparse.Namespace, env: dict[str, str], console: Console) -> int:
    """Print a new encryption key."""
    console.say(vaults.generate_key())
    console.say(
        f"Store it as {vaults.ENCRYPTION_KEY_ENV}. To rotate, set {vaults.ENCRYPTION_KEY_ENV}="
        "'<new>,<old>' and run `python -m trender.auth_setup rotate-key`."
    )
    return 0


def cmd_pat(args: argparse.Namespace, env: dict[str, str], console: Console) -> int:
    """Check a personal access token and print the connection command."""
    api_url = console.value("API base URL", args.api_url, DEFAULT_API_URL).rstrip("/")
    token = console.secret("Personal access token", args.token_env, env)
    if args.verify:
        login = _who(api_url, token)
        console.say(f"The token authenticates as {login}.")
    console.say("Create the connection (the command holds the token; keep it out of logs):")
    fields = {
        "conn_type": "http",
        "host": api_url,
        "password": token,
        "extra": {"auth_type": "pat"},
    }
    console.say("  " + connection_command(args.conn_id, fields))
    return 0


def cmd_oauth(args: argparse.Namespace, env: dict[str, str], console: Console) -> int:
    """Authorize through the device flow and store the encrypted token pair."""
    api_url = console.value("API base URL", args.api_url, DEFAULT_API_URL).rstrip("/")
    client_id = console.value("OAuth client id", args.client_id or env.get("GITHUB_CLIENT_ID"))
    client_secret = console.secret("OAuth client secret", args.client_secret_env, env)
    database_url = _database_url(args, env, console)
    vault = _vault(env, console)
    token_url = args.token_url or default_token_url(api_url)
    endpoint = TokenEndpoint(token_url, client_id, client_secret)

    authorization = endpoint.start_device_flow(args.scope)
    _show_device_code(console, authorization)
    tokens = endpoint.poll_device_flow(
        authorization, on_wait=lambda code, interval: _waiting(console, code, interval)
    )
    console.say("Authorized.")
    if args.verify and tokens.access_token:
        console.say(f"The new token authenticates as {_who(api_url, tokens.access_token)}.")

    _ensure_table(database_url)
    store = CredentialStore(args.conn_id, _connect_factory(database_url), vault)
    store.replace(tokens, SETUP_RUN)
    console.say(
        f"Stored the encrypted token pair as credential {args.conn_id} (key "
        f"{vault.key_fingerprint}); access token expires {_when(tokens.access_expires_at)}, "
        f"refresh token expires {_when(tokens.refresh_expires_at)}."
    )
    extra: dict[str, Any] = {"auth_type": AUTH_OAUTH}
    if args.token_url:
        extra["oauth_token_url"] = args.token_url
    fields = {
        "conn_type": "http",
        "host": api_url,
        "login": client_id,
        "password": client_secret,
        "extra": extra,
    }
    console.say("Create the connection (the command holds the client secret):")
    console.say("  " + connection_command(args.conn_id, fields))
    console.say("Optionally mirror the token state (no secrets) for operators:")
    state = token_state(args.conn_id, tokens, vault.key_fingerprint, SETUP_RUN)
    console.say("  " + variable_command(state))
    return 0


def _show_device_code(console: Console, authorization: DeviceAuthorization) -> None:
    minutes = max(1, authorization.expires_in // 60)
    console.say(
        f"Open {authorization.verification_uri} and enter the code {authorization.user_code} "
        f"(valid {minutes} minutes). Waiting for approval ..."
    )


def _waiting(console: Console, code: str, interval: int) -> None:
    if code == "slow_down":
        console.say(f"GitHub asked to poll slower; now every {interval}s.")


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_status(args: argparse.Namespace, env: dict[str, str], console: Console) -> int:
    """Report the credential type, owner, expiry times and rate budgets, never a token."""
    hook = TrenderGitHubHook(args.conn_id)
    try:
        kind = hook.auth_type()
        api_url = hook.api_base_url()
    except Exception as error:  # the connection lookup raises backend-specific errors
        raise SetupError(
            f"connection {args.conn_id} could not be read ({type(error).__name__}): define it "
            f"(for example AIRFLOW_CONN_{args.conn_id.upper()}) or run `pat` / `oauth` first"
        ) from None
    console.say(f"credential: {kind} (connection {args.conn_id}, {api_url})")
    connect = None
    if kind == AUTH_OAUTH:
        database_url = _database_url(args, env, console)
        connect = _connect_factory(database_url)
        row = CredentialStore(args.conn_id, connect).read()
        if row is None:
            console.say("stored token pair: none yet (seeded from the connection on first use)")
        else:
            console.say(f"access token expires: {_when(row['access_expires_at'])}")
            console.say(f"refresh token expires: {_when(row['refresh_expires_at'])}")
            console.say(
                f"stored with key {row['key_fingerprint']}, updated {_when(row['updated_at'])} "
                f"by {row['updated_by_run'] or 'unknown'}"
            )
    source = hook.get_token_source(connect=connect, run_id=SETUP_RUN, mirror=None)
    with hook.get_client(token_source=source, max_retries=1) as client:
        if kind in (AUTH_PAT, AUTH_OAUTH):
            user = client.get_json("/user")
            console.say(f"owner: {user.get('login') if isinstance(user, dict) else 'unknown'}")
        limits = client.rate_limit()
    console.say(f"rate limits: {describe_budgets(limits)}")
    return 0


def cmd_rotate_key(args: argparse.Namespace, env: dict[str, str], console: Console) -> int:
    """Re-encrypt every stored credential with the newest key."""
    try:
        vault = vaults.Vault.from_env(env)
    except vaults.VaultError as error:
        raise SetupError(str(error)) from None
    database_url = _database_url(args, env, console)
    conn = _connect_factory(database_url)()
    rotated, current, failed = [], [], []
    try:
        for row in warehouse.read_all_oauth_tokens(conn, for_update=True):
            name = row["credential_name"]
            try:
                updated = {
                    **row,
                    "access_token_encrypted": _rotate(vault, row["access_token_encrypted"]),
                    "refresh_token_encrypted": _rotate(vault, row["refresh_token_encrypted"]),
                    "key_fingerprint": vault.key_fingerprint,
                    "updated_by_run": "rotate-key",
                }
            except vaults.UndecryptableError:
                failed.append(name)
                continue
            if row["key_fingerprint"] == vault.key_fingerprint:
                current.append(name)
            warehouse.upsert_oauth_token(conn, updated)
            rotated.append(name)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    console.say(
        f"Re-encrypted {len(rotated)} credential(s) with key {vault.key_fingerprint} "
        f"({len(current)} already used it)."
    )
    if failed:
        console.say(
            f"{len(failed)} credential(s) cannot be decrypted with any configured key and were "
            f"left unchanged: {', '.join(failed)}. Put their key back, or {REAUTHORIZE_HINT}."
        )
        return EXIT_FAILED
    console.say(f"The old key can now be removed from {vaults.ENCRYPTION_KEY_ENV}.")
    return 0


def _rotate(vault: vaults.Vault, ciphertext: str | None) -> str | None:
    return vault.rotate(ciphertext) if ciphertext else None


COMMANDS: dict[str, Callable[[argparse.Namespace, dict[str, str], Console], int]] = {
    "key": cmd_key,
    "pat": cmd_pat,
    "oauth": cmd_oauth,
    "status": cmd_status,
    "rotate-key": cmd_rotate_key,
}
MENU = (("pat", "personal access token"), ("oauth", "OAuth (device flow)"), ("status", "status"))


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m trender.auth_setup",
        description="Set up Trender's GitHub credentials (run without a command to be guided).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("key", help="print a new GITHUB_TOKEN_ENCRYPTION_KEY")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="connection / credential")
        sub.add_argument("--database-url", help=f"warehouse URL (default ${DATABASE_URL_ENV})")

    pat = commands.add_parser("pat", help="check a personal access token")
    common(pat)
    pat.add_argument("--api-url", help=f"API base URL (default {DEFAULT_API_URL})")
    pat.add_argument("--token-env", default=TOKEN_ENV, help="env var holding the token")
    pat.add_argument("--no-verify", dest="verify", action="store_false", help="skip GET /user")

    oauth = commands.add_parser("oauth", help="authorize with the device flow and store tokens")
    common(oauth)
    oauth.add_argument("--api-url", help=f"API base URL (default {DEFAULT_API_URL})")
    oauth.add_argument("--client-id", help="OAuth / GitHub App client id")
    oauth.add_argument(
        "--client-secret-env", default=CLIENT_SECRET_ENV, help="env var holding the secret"
    )
    oauth.add_argument("--token-url", help="token endpoint (default: derived from the API URL)")
    oauth.add_argument("--scope", default="", help="scopes to ask for (OAuth apps only)")
    oauth.add_argument("--no-verify", dest="verify", action="store_false", help="skip GET /user")

    status = commands.add_parser("status", help="report the configured credential")
    common(status)
    rotate = commands.add_parser("rotate-key", help="re-encrypt stored credentials")
    common(rotate)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> int:
    """Run the command; return the exit status."""
    console = console or Console()
    environment = dict(os.environ if env is None else env)
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        if not console.interactive:
            parser.print_usage(console.out)
            console.say("Give a command, or run on a terminal for a guided setup.")
            return EXIT_USAGE
        console.say("What do you want to set up?")
        for number, (_, label) in enumerate(MENU, start=1):
            console.say(f"  {number}. {label}")
        choice = console.value("Choice", None, "1")
        names = {str(number): name for number, (name, _) in enumerate(MENU, start=1)}
        if choice not in names:
            console.say(f"Unknown choice {choice!r}.")
            return EXIT_USAGE
        args = parser.parse_args([names[choice]])
    try:
        return COMMANDS[args.command](args, environment, console)
    except (SetupError, GitHubError) as error:
        console.say(f"error: {error}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
