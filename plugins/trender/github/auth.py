"""GitHub OAuth token lifecycle: the token endpoint, the encrypted store and the token source.

GitHub App user tokens expire after 8 hours and come with a single-use refresh token that
lives 6 months. The authoritative copy of the pair is the Fernet-encrypted row in
``github_oauth_tokens``. A refresh locks that row (``select ... for update``) and re-reads it
after the lock is granted, so when several task processes notice the expiry together exactly
one of them spends the refresh token and the others adopt the pair it committed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from trender import warehouse
from trender.github.clock import Clock, default_clock
from trender.github.errors import (
    GitHubCredentialError,
    GitHubCredentialRejectedError,
    GitHubCredentialUndecryptableError,
    GitHubOAuthError,
    GitHubTokenEndpointError,
    oauth_failure,
    oauth_fields,
)
from trender.vault import ENCRYPTION_KEY_ENV, UndecryptableError, Vault, VaultError

log = logging.getLogger(__name__)

GITHUB_TOKEN_URL = "https://github.com/login/oauth/access_token"
TOKEN_PATH = "/login/oauth/access_token"
DEVICE_CODE_PATH = "/login/device/code"
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
VARIABLE_KEY = "trender_github_oauth_token"  # holds "token": Airflow masks its value
# Refresh this long before the access token's expiry, so no request races the deadline.
REFRESH_MARGIN_SECONDS = 5 * 60
# Warn this long before the refresh token's 6-month expiry: re-authorizing needs a person.
REFRESH_TOKEN_WARNING_DAYS = 14
# One refresh after a 401 per token source (one task): a second 401 means the new token is
# refused too, and spending refresh tokens will not fix that.
MAX_UNAUTHORIZED_REFRESHES = 1
TOKEN_ENDPOINT_TIMEOUT = (5.0, 20.0)  # connect, read seconds
TOKEN_ENDPOINT_RETRIES = 2  # only for answers that prove the refresh was not processed (5xx)
TOKEN_ENDPOINT_BACKOFF_SECONDS = 1.0
DEVICE_SLOW_DOWN_SECONDS = 5  # RFC 8628: add 5 seconds to the interval on slow_down
DEFAULT_DEVICE_INTERVAL = 5
# The seed names the original system used for a first run with an empty token table.
SEED_ENV = {
    "access_token": "GITHUB_ACCESS_TOKEN",
    "refresh_token": "GITHUB_REFRESH_TOKEN",
    "client_id": "GITHUB_CLIENT_ID",
    "client_secret": "GITHUB_CLIENT_SECRET",
}
REAUTHORIZE_HINT = (
    "re-authorize with `python -m trender.auth_setup oauth --client-id <client id>` "
    "(device flow), which stores a new token pair"
)


def mask(value: str | None, name: str | None = None) -> None:
    """Register a secret with Airflow's secrets masker before anything could log it."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # outside an Airflow installation there is no masker to feed
        return
    mask_secret(value, name)


def utc_now(clock: Clock) -> dt.datetime:
    """Return the clock's time as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(clock.time(), dt.UTC)


def parse_expiry(value: Any) -> dt.datetime | None:
    """Read an expiry given as epoch seconds, ISO 8601 or ``YYYY-MM-DD HH:MM:SS UTC``."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    text = str(value).strip()
    try:
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    except ValueError:
        pass
    text = text.removesuffix(" UTC").replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            raise ValueError(f"cannot read {value!r} as an expiry time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _seconds(value: Any) -> int | None:
    """Read ``expires_in``-style fields, which GitHub sends as integers and its docs as strings."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def default_token_url(api_base_url: str) -> str:
    """Return the OAuth token endpoint that belongs to an API base URL.

    ``https://api.github.com`` uses ``https://github.com``; GitHub Enterprise Server serves the
    API below ``/api/v3`` and OAuth at its root; anything else (the replay server) serves both.
    """
    parts = urlsplit(api_base_url.rstrip("/"))
    host = (parts.hostname or "").lower()
    if host == "api.github.com":
        return GITHUB_TOKEN_URL
    path = parts.path.rstrip("/")
    if path.endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    return f"{parts.scheme}://{parts.netloc}{path}{TOKEN_PATH}"


@dataclass(frozen=True, repr=False)
class OAuthTokens:
    """An access token, its refresh token and their expiry times."""

    access_token: str | None
    refresh_token: str | None
    access_expires_at: dt.datetime | None = None
    refresh_expires_at: dt.datetime | None = None
    scope: str | None = None

    def __repr__(self) -> str:
        """Show expiry times only."""
        return (
            f"OAuthTokens(access_expires_at={self.access_expires_at!r}, "
            f"refresh_expires_at={self.refresh_expires_at!r})"
        )

    def masked(self) -> OAuthTokens:
        """Register both tokens with the secrets masker; return self."""
        mask(self.access_token)
        mask(self.refresh_token)
        return self


def tokens_from_answer(fields: Mapping[str, Any], now: dt.datetime) -> OAuthTokens:
    """Build tokens from a successful token-endpoint answer."""
    access = fields.get("access_token")
    if not isinstance(access, str) or not access:
        raise GitHubTokenEndpointError(
            "the OAuth token endpoint answered without an access_token or an error",
            method="POST",
            path=TOKEN_PATH,
        )
    refresh = fields.get("refresh_token")
    expires_in = _seconds(fields.get("expires_in"))
    refresh_in = _seconds(fields.get("refresh_token_expires_in"))
    scope = fields.get("scope")
    return OAuthTokens(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        access_expires_at=now + dt.timedelta(seconds=expires_in) if expires_in else None,
        refresh_expires_at=now + dt.timedelta(seconds=refresh_in) if refresh_in else None,
        scope=scope if isinstance(scope, str) else None,
    ).masked()


@dataclass(frozen=True, repr=False)
class DeviceAuthorization:
    """A started device flow: the code the user enters and the one the client polls with."""

    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int

    def __repr__(self) -> str:
        """Hide the device code."""
        return f"DeviceAuthorization(user_code={self.user_code!r}, uri={self.verification_uri!r})"


class TokenEndpoint:
    """Client of GitHub's OAuth endpoints: refresh-token grant and device flow."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = TOKEN_ENDPOINT_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        """Configure the endpoint and the OAuth client credentials."""
        if not client_id:
            raise ValueError("an OAuth client id is required")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret or None
        mask(self._client_secret)
        self._session = session or requests.Session()
        self._timeout = timeout
        self.clock = clock or default_clock()
        self.requests_sent = 0

    def __repr__(self) -> str:
        """Show the URL and client id, never the secret."""
        return f"TokenEndpoint({self.token_url!r}, client_id={self.client_id!r})"

    @property
    def device_code_url(self) -> str:
        """Return the device-code URL beside the token URL."""
        if self.token_url.endswith(TOKEN_PATH):
            return self.token_url[: -len(TOKEN_PATH)] + DEVICE_CODE_PATH
        parts = urlsplit(self.token_url)
        return f"{parts.scheme}://{parts.netloc}{DEVICE_CODE_PATH}"

    def refresh(self, refresh_token: str) -> OAuthTokens:
        """Spend a refresh token for a new pair; raise GitHubOAuthError when it is refused."""
        fields = self._post(
            self.token_url,
            {
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )
        failure = oauth_failure(fields, path=urlsplit(self.token_url).path)
        if failure is not None:
            raise failure
        return tokens_from_answer(fields, utc_now(self.clock))

    def start_device_flow(self, scope: str = "") -> DeviceAuthorization:
        """Ask for a device code and the user code to show."""
        fields = self._post(self.device_code_url, {"client_id": self.client_id, "scope": scope})
        failure = oauth_failure(fields, path=DEVICE_CODE_PATH)
        if failure is not None:
            raise failure
        device_code, user_code = fields.get("device_code"), fields.get("user_code")
        if not isinstance(device_code, str) or not isinstance(user_code, str):
            raise GitHubTokenEndpointError(
                "the device-code endpoint answered without device_code and user_code",
                method="POST",
                path=DEVICE_CODE_PATH,
            )
        mask(device_code)
        return DeviceAuthorization(
            device_code=device_code,
            user_code=user_code,
            verification_uri=str(fields.get("verification_uri") or ""),
            expires_in=_seconds(fields.get("expires_in")) or 900,
            interval=_seconds(fields.get("interval")) or DEFAULT_DEVICE_INTERVAL,
        )

    def poll_device_flow(
        self,
        authorization: DeviceAuthorization,
        *,
        on_wait: Callable[[str, int], None] | None = None,
    ) -> OAuthTokens:
        """Poll until the user approves; honour authorization_pending, slow_down, expiry."""
        interval = authorization.interval
        deadline = self.clock.time() + authorization.expires_in
        path = urlsplit(self.token_url).path
        while True:
            self.clock.sleep(interval)
            fields = self._post(
                self.token_url,
                {
                    "client_id": self.client_id,
                    "device_code": authorization.device_code,
                    "grant_type": DEVICE_GRANT_TYPE,
                },
            )
            failure = oauth_failure(fields, path=path)
            if failure is None:
                return tokens_from_answer(fields, utc_now(self.clock))
            if failure.code == "slow_down":
                interval = _seconds(fields.get("interval")) or interval + DEVICE_SLOW_DOWN_SECONDS
            elif failure.code != "authorization_pending":
                raise failure
            if self.clock.time() >= deadline:
                raise GitHubOAuthError(
                    "expired_token: the device code expired before it was approved; start again",
                    code="expired_token",
                    method="POST",
                    path=path,
                )
            if on_wait is not None:
                on_wait(failure.code, interval)

    def _post(self, url: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """POST form fields; return the decoded answer (it may hold an OAuth ``error``)."""
        path = urlsplit(url).path
        body = {key: value for key, value in fields.items() if value is not None}
        attempt = 0
        while True:
            self.requests_sent += 1
            try:
                response = self._session.post(
                    url,
                    json=body,
                    headers={"Accept": "application/json"},
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.ConnectTimeout:
                # Nothing reached the server: safe to try again.
                if attempt < TOKEN_ENDPOINT_RETRIES:
                    attempt += 1
                    self.clock.sleep(TOKEN_ENDPOINT_BACKOFF_SECONDS * 2**attempt)
                    continue
                raise GitHubTokenEndpointError(
                    f"the OAuth endpoint {path} could not be reached (connect timeout)",
                    method="POST",
                    path=path,
                ) from None
            except requests.RequestException as exc:
                raise GitHubTokenEndpointError(
                    f"the OAuth endpoint {path} gave no answer ({type(exc).__name__}); a refresh "
                    "may or may not have been processed, the next attempt re-reads the store",
                    method="POST",
                    path=path,
                ) from None
            if response.status_code >= 500 and attempt < TOKEN_ENDPOINT_RETRIES:
                attempt += 1
                log.warning(
                    "OAuth endpoint %s answered %d; retry %d of %d",
                    path, response.status_code, attempt, TOKEN_ENDPOINT_RETRIES,
                )  # fmt: skip
                self.clock.sleep(TOKEN_ENDPOINT_BACKOFF_SECONDS * 2**attempt)
                continue
            if response.status_code != 200:
                raise GitHubTokenEndpointError(
                    f"the OAuth endpoint {path} answered HTTP {response.status_code}; check the "
                    "token URL (extra oauth_token_url) and the client id",
                    status=response.status_code,
                    method="POST",
                    path=path,
                )
            answer = oauth_fields(response.content)
            if not answer:
                raise GitHubTokenEndpointError(
                    f"the OAuth endpoint {path} answered {len(response.content)} unreadable bytes",
                    status=200,
                    method="POST",
                    path=path,
                )
            return answer


def mirror_to_variable(state: Mapping[str, Any]) -> None:
    """Mirror the non-secret token state to the Airflow Variable; never fail the task."""
    try:
        from airflow.sdk import Variable

        Variable.set(VARIABLE_KEY, dict(state), serialize_json=True)
    except Exception as exc:  # the mirror is for operators; the table stays authoritative
        log.warning(
            "Could not mirror the OAuth token state to Variable %s (%s); the token table "
            "is unaffected",
            VARIABLE_KEY, type(exc).__name__,
        )  # fmt: skip


class CredentialStore:
    """Encrypted rows of ``github_oauth_tokens`` for one credential."""

    def __init__(
        self,
        credential: str,
        connect: Callable[[], Any] = warehouse.connect,
        vault: Vault | Callable[[], Vault] | None = None,
    ) -> None:
        """Use ``connect`` for DB-API connections and ``vault`` (default: from the env)."""
        self.credential = credential
        self._connect = connect
        self._vault_source = vault
        self._vault: Vault | None = vault if isinstance(vault, Vault) else None

    @property
    def vault(self) -> Vault:
        """Return the vault, reading the key from the environment on first use."""
        if self._vault is None:
            import os

            try:
                source = self._vault_source
                self._vault = source() if callable(source) else Vault.from_env(os.environ)
            except VaultError as error:
                raise GitHubCredentialError(
                    f"OAuth credential {self.credential} cannot be used: {error}",
                    credential=self.credential,
                ) from None
        return self._vault

    def connect(self) -> Any:
        """Open a connection to the warehouse."""
        return self._connect()

    def decrypt(self, row: Mapping[str, Any]) -> OAuthTokens:
        """Decrypt a stored row; an unreadable row is a credential error."""
        try:
            access = row.get("access_token_encrypted")
            refresh = row.get("refresh_token_encrypted")
            tokens = OAuthTokens(
                access_token=self.vault.decrypt(access) if access else None,
                refresh_token=self.vault.decrypt(refresh) if refresh else None,
                access_expires_at=row.get("access_expires_at"),
                refresh_expires_at=row.get("refresh_expires_at"),
                scope=row.get("scope"),
            )
        except UndecryptableError:
            raise GitHubCredentialUndecryptableError(
                f"OAuth credential {self.credential} cannot be decrypted: it was stored with key "
                f"{row.get('key_fingerprint')}, and {ENCRYPTION_KEY_ENV} holds keys "
                f"{', '.join(self.vault.fingerprints)}. Put the old key back (as 'new,old'), "
                f"or {REAUTHORIZE_HINT}",
                credential=self.credential,
            ) from None
        return tokens.masked()

    def encrypt(self, tokens: OAuthTokens, run_id: str | None) -> dict[str, Any]:
        """Return the row that stores ``tokens``."""
        vault = self.vault
        return {
            "credential_name": self.credential,
            "auth_type": "oauth",
            "access_token_encrypted": vault.encrypt(tokens.access_token)
            if tokens.access_token
            else None,
            "refresh_token_encrypted": vault.encrypt(tokens.refresh_token)
            if tokens.refresh_token
            else None,
            "access_expires_at": tokens.access_expires_at,
            "refresh_expires_at": tokens.refresh_expires_at,
            "scope": tokens.scope,
            "key_fingerprint": vault.key_fingerprint,
            "updated_by_run": run_id,
        }

    def read(self) -> dict[str, Any] | None:
        """Return the stored row without locking it."""
        conn = self.connect()
        try:
            row = warehouse.read_oauth_token(conn, self.credential)
            conn.commit()
            return row
        finally:
            conn.close()

    def seed(self, tokens: OAuthTokens, run_id: str | None) -> bool:
        """Store ``tokens`` unless a row exists; return whether they were stored."""
        row = self.encrypt(tokens, run_id)
        conn = self.connect()
        try:
            inserted = warehouse.insert_oauth_token(conn, row)
            conn.commit()
            return inserted
        finally:
            conn.close()

    def replace(self, tokens: OAuthTokens, run_id: str | None) -> None:
        """Store ``tokens``, replacing any stored pair (setup after a new authorization)."""
        row = self.encrypt(tokens, run_id)
        conn = self.connect()
        try:
            warehouse.upsert_oauth_token(conn, row)
            conn.commit()
        finally:
            conn.close()


def token_state(
    credential: str, tokens: OAuthTokens, key_fingerprint: str | None, run_id: str | None
) -> dict[str, Any]:
    """Return the non-secret state of a token pair, for the Variable mirror and metrics."""
    return {
        "credential": credential,
        "auth_type": "oauth",
        "access_expires_at": _iso(tokens.access_expires_at),
        "refresh_expires_at": _iso(tokens.refresh_expires_at),
        "scope": tokens.scope,
        "key_fingerprint": key_fingerprint,
        "updated_by_run": run_id,
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat() if moment else None


class OAuthTokenSource:
    """Token source for a rotating OAuth pair kept in the encrypted store.

    ``token()`` refreshes a few minutes before the access token expires; ``on_unauthorized()``
    refreshes once after a 401 (the client then replays the request once). Thread safe: the
    README fetches of one task share a source.
    """

    def __init__(
        self,
        store: CredentialStore,
        endpoint: TokenEndpoint,
        *,
        seed: OAuthTokens | None = None,
        run_id: str | None = None,
        clock: Clock | None = None,
        mirror: Callable[[Mapping[str, Any]], None] | None = mirror_to_variable,
        refresh_margin_seconds: float = REFRESH_MARGIN_SECONDS,
        warning_days: float = REFRESH_TOKEN_WARNING_DAYS,
    ) -> None:
        """Configure the source; nothing is read until the first token is needed."""
        self._store = store
        self._endpoint = endpoint
        self._seed = seed.masked() if seed is not None else None
        self._run_id = run_id
        self.clock = clock or endpoint.clock
        self._mirror = mirror
        self._margin = dt.timedelta(seconds=refresh_margin_seconds)
        self._warning = dt.timedelta(days=warning_days)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._tokens: OAuthTokens | None = None
        self._unauthorized_refreshes = 0
        self._warned = False
        self.refreshes = 0
        self.adopted = 0
        self.seeded = False

    @property
    def credential(self) -> str:
        """Return the credential name."""
        return self._store.credential

    def __repr__(self) -> str:
        """Name the credential only."""
        return f"OAuthTokenSource({self.credential!r})"

    def token(self) -> str | None:
        """Return a valid access token, refreshing it first when it is about to expire."""
        with self._lock:
            if self._tokens is None:
                self._tokens = self._load()
                self._check_refresh_expiry()
            if self._expiring(self._tokens):
                self._refresh("the access token expires soon", self._tokens.access_token)
            token = self._tokens.access_token
        self._local.used = token
        return token

    def on_unauthorized(self) -> bool:
        """Refresh once after a 401; return whether the request may replay with a new token."""
        used = getattr(self._local, "used", None)
        with self._lock:
            if self._tokens is not None and self._tokens.access_token != used:
                return True  # another thread already refreshed; replay with the new token
            if self._unauthorized_refreshes >= MAX_UNAUTHORIZED_REFRESHES:
                log.warning(
                    "GitHub refused the refreshed token of %s too; not refreshing again",
                    self.credential,
                )
                return False
            self._unauthorized_refreshes += 1
            self._refresh("GitHub answered 401", used)
            return True

    def status(self) -> dict[str, Any]:
        """Return non-secret state for task metrics: refreshes and the refresh-token deadline."""
        with self._lock:
            tokens = self._tokens
        state: dict[str, Any] = {
            "auth_type": "oauth",
            "credential": self.credential,
            "refreshes": self.refreshes,
            "adopted_refreshes": self.adopted,
            "seeded": self.seeded,
        }
        if tokens is not None:
            left = self._refresh_left(tokens)
            state.update(
                access_expires_at=_iso(tokens.access_expires_at),
                refresh_expires_at=_iso(tokens.refresh_expires_at),
                refresh_token_days_left=round(left.total_seconds() / 86400, 2)
                if left is not None
                else None,
                refresh_token_expiring=left is not None and left <= self._warning,
            )
        return state

    def _now(self) -> dt.datetime:
        return utc_now(self.clock)

    def _expiring(self, tokens: OAuthTokens) -> bool:
        if tokens.access_token is None:
            return True
        expires = tokens.access_expires_at
        return expires is not None and expires - self._now() <= self._margin

    def _refresh_left(self, tokens: OAuthTokens) -> dt.timedelta | None:
        if tokens.refresh_expires_at is None:
            return None
        return tokens.refresh_expires_at - self._now()

    def _check_refresh_expiry(self) -> None:
        left = self._refresh_left(self._tokens) if self._tokens else None
        if left is None or left > self._warning or self._warned:
            return
        self._warned = True
        log.warning(
            "The OAuth refresh token of %s expires at %s (in %.1f days); %s before then",
            self.credential, _iso(self._tokens.refresh_expires_at),
            left.total_seconds() / 86400, REAUTHORIZE_HINT,
        )  # fmt: skip

    def _load(self) -> OAuthTokens:
        row = self._store.read()
        if row is None:
            if self._seed is None:
                raise GitHubCredentialError(
                    f"OAuth credential {self.credential} has no stored tokens and nothing to "
                    "seed them from: set access_token and refresh_token in the connection "
                    f"extra, or {SEED_ENV['refresh_token']}, or {REAUTHORIZE_HINT}",
                    credential=self.credential,
                )
            if self._store.seed(self._seed, self._run_id):
                self.seeded = True
                log.info("Seeded the OAuth token store for %s", self.credential)
            row = self._store.read()
            if row is None:
                raise GitHubCredentialError(
                    f"OAuth credential {self.credential} vanished from the token store right "
                    "after it was seeded",
                    credential=self.credential,
                )
        return self._store.decrypt(row)

    def _refresh(self, reason: str, stale_access: str | None) -> None:
        """Refresh under the row lock; adopt a pair another process committed meanwhile."""
        conn = self._store.connect()
        committed: OAuthTokens | None = None
        try:
            row = warehouse.read_oauth_token(conn, self.credential, for_update=True)
            if row is None:
                raise GitHubCredentialError(
                    f"OAuth credential {self.credential} is no longer in the token store; "
                    f"{REAUTHORIZE_HINT}",
                    credential=self.credential,
                )
            current = self._store.decrypt(row)
            if current.access_token != stale_access and not self._expiring(current):
                conn.commit()
                self._tokens = current
                self.adopted += 1
                log.info("Another task refreshed the OAuth token of %s; using it", self.credential)
                return
            self._check_spendable(current)
            log.info("Refreshing the OAuth token of %s: %s", self.credential, reason)
            try:
                fresh = self._endpoint.refresh(current.refresh_token or "")
            except GitHubOAuthError as error:
                conn.rollback()
                self._after_rejection(error, current)
                return
            if fresh.refresh_token is None:  # expiration disabled: the old one stays valid
                fresh = OAuthTokens(
                    fresh.access_token,
                    current.refresh_token,
                    fresh.access_expires_at,
                    current.refresh_expires_at,
                    fresh.scope,
                )
            warehouse.upsert_oauth_token(conn, self._store.encrypt(fresh, self._run_id))
            conn.commit()
            committed = fresh
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        self._tokens = committed
        self.refreshes += 1
        log.info(
            "Refreshed the OAuth token of %s; the new one expires at %s",
            self.credential, _iso(committed.access_expires_at),
        )  # fmt: skip
        self._check_refresh_expiry()
        if self._mirror is not None:
            self._mirror(
                token_state(
                    self.credential, committed, self._store.vault.key_fingerprint, self._run_id
                )
            )

    def _check_spendable(self, tokens: OAuthTokens) -> None:
        if tokens.refresh_token is None:
            raise GitHubCredentialRejectedError(
                f"OAuth credential {self.credential} has an expired access token and no refresh "
                f"token; {REAUTHORIZE_HINT}",
                credential=self.credential,
            )
        if tokens.refresh_expires_at is not None and tokens.refresh_expires_at <= self._now():
            raise GitHubCredentialRejectedError(
                f"The OAuth refresh token of {self.credential} expired at "
                f"{_iso(tokens.refresh_expires_at)}; {REAUTHORIZE_HINT}",
                credential=self.credential,
                code="refresh_token_expired",
            )

    def _after_rejection(self, error: GitHubOAuthError, spent: OAuthTokens) -> None:
        """Adopt a pair stored by someone else meanwhile, or fail saying how to re-authorize."""
        row = self._store.read()
        if row is not None:
            again = self._store.decrypt(row)
            if again.refresh_token != spent.refresh_token and not self._expiring(again):
                self._tokens = again
                self.adopted += 1
                log.info("The OAuth token of %s was replaced meanwhile; using it", self.credential)
                return
        log.error(
            "The token endpoint refused the OAuth credential of %s (%s)",
            self.credential, error.code,
        )  # fmt: skip
        description = f": {error.description}" if error.description else ""
        if error.code == "incorrect_client_credentials":
            fix = (
                "check the connection's login (client id) and password (client secret); if "
                f"they are right, {REAUTHORIZE_HINT}"
            )
        else:
            fix = REAUTHORIZE_HINT
        raise GitHubCredentialRejectedError(
            f"The token endpoint refused OAuth credential {self.credential} "
            f"({error.code}{description}); the stored row was kept. To fix it, {fix}",
            credential=self.credential,
            code=error.code,
        )


def seed_from(
    extra: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[OAuthTokens | None, list[str]]:
    """Return the initial token pair from the connection extra, else the seed env names."""
    access = extra.get("access_token") or env.get(SEED_ENV["access_token"])
    refresh = extra.get("refresh_token") or env.get(SEED_ENV["refresh_token"])
    source = (
        "connection extra"
        if extra.get("access_token") or extra.get("refresh_token")
        else ("environment")
    )
    if not access and not refresh:
        return None, []
    problems = []
    try:
        access_expires = parse_expiry(extra.get("expires_at"))
    except ValueError as error:
        access_expires, problems = None, [f"expires_at: {error}"]
    try:
        refresh_expires = parse_expiry(extra.get("refresh_token_expires_at"))
    except ValueError as error:
        refresh_expires = None
        problems.append(f"refresh_token_expires_at: {error}")
    tokens = OAuthTokens(
        access_token=str(access) if access else None,
        refresh_token=str(refresh) if refresh else None,
        access_expires_at=access_expires,
        refresh_expires_at=refresh_expires,
    ).masked()
    log.debug("OAuth seed tokens available from the %s", source)
    return tokens, problems


def dumps_state(state: Mapping[str, Any]) -> str:
    """Serialise a token state compactly for commands and the Variable."""
    return json.dumps(dict(state), separators=(",", ":"), sort_keys=True)
