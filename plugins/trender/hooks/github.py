"""The Airflow hook that builds GitHub clients from the ``trender_github`` connection."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook

from trender.github import clock as clocks
from trender.github.auth import (
    SEED_ENV,
    CredentialStore,
    OAuthTokenSource,
    TokenEndpoint,
    default_token_url,
    mask,
    mirror_to_variable,
    seed_from,
)
from trender.github.client import (
    ACCEPT_JSON,
    API_VERSION,
    DEFAULT_USER_AGENT,
    INCOMPLETE_RESULTS_RETRIES,
    GitHubClient,
    StaticToken,
    TokenSource,
)
from trender.github.errors import GitHubAuthError, GitHubError, GitHubPermissionError
from trender.github.net import is_loopback
from trender.github.ratelimit import GitHubRateLimitPolicy

DEFAULT_API_URL = "https://api.github.com"
AUTH_PAT = "pat"
AUTH_OAUTH = "oauth"
AUTH_ANONYMOUS = "anonymous"
AUTH_TYPES = (AUTH_PAT, AUTH_OAUTH)
CLIENT_MAX_RETRIES = 6  # every retry of one request: 5xx, transport and rate-limit waits
SHOWN_RESOURCES = ("core", "search", "code_search")
CONNECT_TIMEOUT_SECONDS = 5.0  # extra "timeout" sets the read timeout; connecting stays bounded


class TrenderGitHubHook(HttpHook):
    """
    Build GitHub clients from an HTTP connection.

    - host: the API base URL (``https://api.github.com``; GitHub Enterprise Server
      ``https://ghe.example.com/api/v3``; the replay server's URL).
    - Authentication, decided in this order:

      1. extra ``auth_type`` when set: ``"pat"`` or ``"oauth"``;
      2. otherwise OAuth when login (the client id) is set;
      3. otherwise a personal access token when the password is set;
      4. otherwise anonymous.

    - PAT: the password holds the token; it is never refreshed.
    - OAuth: login = client id, password = client secret; the encrypted ``github_oauth_tokens``
      row is authoritative. With an empty table the first pair is seeded from the extra
      (``access_token``, ``refresh_token``, ``expires_at``, ``refresh_token_expires_at``) or from
      ``GITHUB_ACCESS_TOKEN`` / ``GITHUB_REFRESH_TOKEN``; extra ``oauth_token_url`` overrides the
      token endpoint (default: derived from the host).
    - Code search needs a token (GitHub answers anonymous code search with 401), so an anonymous
      client refuses it up front, except against a loopback host (the replay server) or with
      extra ``anonymous_code_search: true``.
    - extra ``timeout``: seconds to wait for an answer (default 30).

    :param github_conn_id: the Airflow connection to read.
    """

    conn_name_attr = "github_conn_id"
    default_conn_name = "trender_github"
    conn_type = "http"
    hook_name = "Trender GitHub"

    def __init__(self, github_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(method="GET", http_conn_id=github_conn_id, **kwargs)
        self.github_conn_id = github_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the connection form for GitHub."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {
                "host": "API base URL",
                "login": "OAuth client id (OAuth only)",
                "password": "Personal access token, or OAuth client secret",
                "extra": "Options (JSON)",
            },
            "placeholders": {
                "host": DEFAULT_API_URL,
                "login": "Iv1.0123456789abcdef (leave empty for a personal access token)",
                "password": "github_pat_... or the OAuth client secret",
                "extra": '{"auth_type": "oauth", "refresh_token": "...", "expires_at": "..."}',
            },
        }

    def _connection(self) -> Any:
        return self.get_connection(self.github_conn_id)

    def api_base_url(self) -> str:
        """Return the API base URL the connection names."""
        connection = self._connection()
        if not connection.host:
            return DEFAULT_API_URL
        self._set_base_url(connection)
        return self.base_url.rstrip("/")

    def auth_type(self) -> str:
        """Return ``pat``, ``oauth`` or ``anonymous``, following the documented order."""
        connection = self._connection()
        explicit = connection.extra_dejson.get("auth_type")
        if explicit is not None:
            value = str(explicit).strip().lower()
            if value not in AUTH_TYPES:
                raise ValueError(
                    f"Connection {self.github_conn_id} has extra auth_type {explicit!r}: use "
                    f"{' or '.join(repr(kind) for kind in AUTH_TYPES)}, or leave it out"
                )
            return value
        if connection.login:
            return AUTH_OAUTH
        if connection.password:
            return AUTH_PAT
        return AUTH_ANONYMOUS

    def get_token_source(
        self,
        *,
        connect: Callable[[], Any] | None = None,
        run_id: str | None = None,
        mirror: Callable[[Mapping[str, Any]], None] | None = mirror_to_variable,
        env: Mapping[str, str] | None = None,
    ) -> TokenSource:
        """Return the token source the connection describes (nothing is fetched yet)."""
        connection = self._connection()
        kind = self.auth_type()
        if kind == AUTH_ANONYMOUS:
            return StaticToken(None)
        if kind == AUTH_PAT:
            if not connection.password:
                raise ValueError(
                    f"Connection {self.github_conn_id} has no password: set a personal access "
                    "token, or OAuth client credentials with login = client id"
                )
            mask(connection.password)
            return StaticToken(connection.password)
        return self._oauth_source(connection, connect, run_id, mirror, env or os.environ)

    def _oauth_source(
        self,
        connection: Any,
        connect: Callable[[], Any] | None,
        run_id: str | None,
        mirror: Callable[[Mapping[str, Any]], None] | None,
        env: Mapping[str, str],
    ) -> OAuthTokenSource:
        extra = connection.extra_dejson
        client_id = connection.login or env.get(SEED_ENV["client_id"])
        client_secret = connection.password or env.get(SEED_ENV["client_secret"])
        if not client_id:
            raise ValueError(
                f"Connection {self.github_conn_id} uses OAuth but has no login: set login = "
                f"the OAuth client id (or {SEED_ENV['client_id']})"
            )
        if not client_secret:
            raise ValueError(
                f"Connection {self.github_conn_id} uses OAuth but has no password: set "
                f"password = the OAuth client secret (or {SEED_ENV['client_secret']})"
            )
        mask(client_secret)
        seed, problems = seed_from(extra, env)
        if problems:
            raise ValueError(
                f"Connection {self.github_conn_id} has unreadable extra fields: "
                + "; ".join(problems)
            )
        clock = clocks.default_clock()
        token_url = extra.get("oauth_token_url") or default_token_url(self.api_base_url())
        endpoint = TokenEndpoint(token_url, client_id, client_secret, clock=clock)
        store = (
            CredentialStore(self.github_conn_id, connect)
            if connect
            else CredentialStore(self.github_conn_id)
        )
        return OAuthTokenSource(
            store, endpoint, seed=seed, run_id=run_id, clock=clock, mirror=mirror
        )

    def anonymous_code_search(self) -> bool:
        """Tell whether code search may go out without a token (replay server or opt-in)."""
        connection = self._connection()
        flag = connection.extra_dejson.get("anonymous_code_search")
        if flag is not None:
            return str(flag).strip().lower() in ("1", "true", "yes", "on")
        return is_loopback((urlsplit(self.api_base_url()).hostname or "").lower())

    def get_client(
        self,
        *,
        token_source: TokenSource | None = None,
        run_id: str | None = None,
        **client_options: Any,
    ) -> GitHubClient:
        """Return a GitHub client with the connection's credentials and the rate-limit policy."""
        source = token_source or self.get_token_source(run_id=run_id)
        policy = client_options.pop("rate_limit_policy", None) or GitHubRateLimitPolicy()
        sleep = client_options.pop("sleep", None) or getattr(policy, "sleep", None)
        client_options.setdefault("max_retries", CLIENT_MAX_RETRIES)
        timeout = self._connection().extra_dejson.get("timeout")
        if timeout is not None:
            client_options.setdefault("timeout", (CONNECT_TIMEOUT_SECONDS, float(timeout)))
        client_options.setdefault("incomplete_retries", INCOMPLETE_RESULTS_RETRIES)
        client_options.setdefault("require_token_for_code_search", not self.anonymous_code_search())
        if sleep is not None:
            client_options["sleep"] = sleep
        return GitHubClient(self.api_base_url(), source, rate_limit_policy=policy, **client_options)

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return a requests session with GitHub's headers and bearer token (never basic auth)."""
        session = requests.Session()
        self._set_base_url(self._connection())
        token = self.get_token_source().token()
        session.headers.update(
            {"Accept": ACCEPT_JSON, "X-GitHub-Api-Version": API_VERSION,
             "User-Agent": DEFAULT_USER_AGENT}
        )  # fmt: skip
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        if headers:
            session.headers.update(headers)
        return session

    def test_connection(self) -> tuple[bool, str]:
        """Call ``/user`` (``/rate_limit`` when it is refused); report owner and budgets."""
        try:
            kind = self.auth_type()
            with self.get_client(max_retries=0) as client:
                owner = None
                if kind != AUTH_ANONYMOUS:
                    try:
                        user = client.get_json("/user")
                        owner = user.get("login") if isinstance(user, dict) else None
                    except GitHubPermissionError:
                        owner = None  # e.g. an installation token: /user is not for it
                limits = client.rate_limit()
        except (GitHubAuthError, GitHubError, ValueError) as error:
            return False, f"Connection {self.github_conn_id}: {error}"
        budgets = describe_budgets(limits)
        if kind == AUTH_ANONYMOUS:
            return True, (
                f"anonymous (connection {self.github_conn_id} has no password: set a personal "
                f"access token for higher limits and code search); {budgets}"
            )
        who = f"authenticated as {owner}" if owner else f"authenticated ({kind})"
        return True, f"{who}; {budgets}"


def describe_budgets(limits: Mapping[str, Any]) -> str:
    """Describe the remaining budgets of a ``/rate_limit`` document."""
    resources = limits.get("resources") if isinstance(limits, Mapping) else None
    parts = []
    for name in SHOWN_RESOURCES:
        entry = resources.get(name) if isinstance(resources, Mapping) else None
        if isinstance(entry, Mapping):
            parts.append(f"{name} {entry.get('remaining')}/{entry.get('limit')}")
    return (", ".join(parts) + " remaining") if parts else "rate limits unknown"
