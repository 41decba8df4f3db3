"""GitHub REST client: search, repositories and READMEs with bounded retries and typed errors."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.utils import parse_header_links

from trender.github.errors import (
    GitHubAuthError,
    GitHubCredentialError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimitError,
    GitHubResponseError,
    GitHubServerError,
    GitHubTransportError,
    GitHubValidationError,
    classify_response,
)
from trender.github.readme import decode_readme_payload

log = logging.getLogger(__name__)

CLIENT_VERSION = "0.1.0"
DEFAULT_BASE_URL = "https://api.github.com"
DEFAULT_USER_AGENT = f"trender/{CLIENT_VERSION} (+https://github.com/trender)"
ACCEPT_JSON = "application/vnd.github+json"  # media type GitHub recommends for REST JSON
API_VERSION = "2022-11-28"  # REST API version the client is written against

SEARCH_RESULT_CAP = 1000  # GitHub serves only the first 1000 results of a search
MAX_PER_PAGE = 100  # largest page size the search endpoints accept
MAX_REDIRECTS = 5  # a renamed repository redirects once; more hops means a loop
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NOT_MODIFIED = 304
DEFAULT_POOL_SIZE = 10  # urllib3's default connection pool size per host

# GitHub's secondary-limit guidance: without retry-after, wait at least one minute.
SECONDARY_LIMIT_DEFAULT_WAIT = 60.0
# GitHub flags a search page incomplete when the search timed out on its side; asking again
# usually gives the full page. After this many repeats the last answer is kept and recorded.
INCOMPLETE_RESULTS_RETRIES = 2

RESOURCE_CORE = "core"
RESOURCE_SEARCH = "search"
RESOURCE_CODE_SEARCH = "code_search"  # code search has its own, smaller bucket (10 per minute)
RESOURCES = (RESOURCE_CORE, RESOURCE_SEARCH, RESOURCE_CODE_SEARCH)


def resource_for_path(path: str) -> str:
    """Name the rate-limit bucket a request path draws from."""
    bare = urlsplit(path).path
    if bare == "/search/code" or bare.startswith("/search/code/"):
        return RESOURCE_CODE_SEARCH
    if bare.startswith("/search/"):
        return RESOURCE_SEARCH
    return RESOURCE_CORE


class TokenSource(Protocol):
    """Supplier of the token sent with each request."""

    def token(self) -> str | None:
        """Return the current token, or None to call the API anonymously."""
        ...

    def on_unauthorized(self) -> bool:
        """React to a 401; return True when a new token is available and the request may replay."""
        ...


class StaticToken:
    """Token source for a fixed personal access token, or anonymous access with None."""

    __slots__ = ("_token",)

    def __init__(self, token: str | None) -> None:
        """Keep the token; an empty string counts as anonymous."""
        self._token = token or None

    def token(self) -> str | None:
        """Return the fixed token."""
        return self._token

    def on_unauthorized(self) -> bool:
        """Report that no other token exists."""
        return False

    def __repr__(self) -> str:
        """Return a representation that never shows the token."""
        return f"StaticToken({'<set>' if self._token else None})"


class RateLimitPolicy(Protocol):
    """Hooks that decide how the client paces itself around GitHub's rate limits."""

    def before_request(self, resource: str) -> None:
        """Run before each HTTP request to ``resource`` (may sleep to pace requests)."""
        ...

    def after_response(self, resource: str, headers: Mapping[str, str], status: int) -> None:
        """Observe the rate-limit headers of each answer."""
        ...

    def wait_for(self, error: GitHubRateLimitError, attempt: int) -> float | None:
        """Return seconds to sleep before retrying after ``error``, or None to give up."""
        ...


class NoRateLimitPolicy:
    """Default policy: no pacing, and rate-limit errors are raised without retrying."""

    def before_request(self, resource: str) -> None:
        """Do nothing."""
        return None

    def after_response(self, resource: str, headers: Mapping[str, str], status: int) -> None:
        """Do nothing."""
        return None

    def wait_for(self, error: GitHubRateLimitError, attempt: int) -> float | None:
        """Give up at once."""
        return None


class WaitForResetPolicy(NoRateLimitPolicy):
    """Policy that sleeps until a rate limit lifts, when that is no longer than a maximum."""

    def __init__(
        self,
        max_wait_seconds: float = 120.0,
        *,
        margin_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the longest acceptable wait and the safety margin after a reset."""
        self._max_wait = max_wait_seconds
        self._margin = margin_seconds
        self._clock = clock

    def wait_for(self, error: GitHubRateLimitError, attempt: int) -> float | None:
        """Return the wait GitHub asked for (retry-after, reset time or one minute) or None."""
        if error.retry_after is not None:
            wait = error.retry_after
        elif error.reset_at is not None:
            wait = error.reset_at - self._clock() + self._margin
        elif error.kind == "secondary":
            wait = SECONDARY_LIMIT_DEFAULT_WAIT
        else:
            return None
        wait = max(wait, 0.0)
        return wait if wait <= self._max_wait else None


@dataclass
class RequestStats:
    """Counters of the client's HTTP traffic; safe to update from several threads."""

    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESOURCES, 0))
    not_modified: int = 0
    not_modified_by_resource: dict[str, int] = field(default_factory=dict)
    incomplete_retries: int = 0
    retries: int = 0
    retry_wait_seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def record_request(self, resource: str) -> None:
        """Count one HTTP request sent to ``resource``."""
        with self._lock:
            self.requests[resource] = self.requests.get(resource, 0) + 1

    def record_not_modified(self, resource: str = RESOURCE_CORE) -> None:
        """Count one 304 answer (GitHub does not charge it against the primary limit)."""
        with self._lock:
            self.not_modified += 1
            self.not_modified_by_resource[resource] = (
                self.not_modified_by_resource.get(resource, 0) + 1
            )

    def record_incomplete_retry(self) -> None:
        """Count one search page asked again because GitHub flagged it incomplete."""
        with self._lock:
            self.incomplete_retries += 1

    def record_retry(self, wait_seconds: float) -> None:
        """Count one re-sent request and the time waited before it."""
        with self._lock:
            self.retries += 1
            self.retry_wait_seconds += wait_seconds

    def record_error(self, error: GitHubError) -> None:
        """Count one failed attempt by error class."""
        name = type(error).__name__
        with self._lock:
            self.errors[name] = self.errors.get(name, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable snapshot of the counters."""
        with self._lock:
            return {
                "requests": dict(self.requests),
                "not_modified": self.not_modified,
                "retries": self.retries,
                "retry_wait_seconds": self.retry_wait_seconds,
                "errors": dict(self.errors),
            }


@dataclass
class SearchPage:
    """One fetched page of a search."""

    page: int
    total_count: int
    incomplete_results: bool
    item_count: int
    query: str
    attempts: int = 1


@dataclass
class SearchResult:
    """Items collected from one or more search pages.

    ``total_count`` is the last page's figure; ``incomplete_results`` is True when any page
    said so.
    """

    query: str
    total_count: int
    incomplete_results: bool
    items: list[dict]
    pages: list[SearchPage]


@dataclass
class Readme:
    """A repository README, or the reason there is no fresh text."""

    full_name: str
    path: str | None
    text: str | None
    sha: str | None
    size: int | None
    etag: str | None
    not_modified: bool = False
    missing: bool = False
    decode_note: str | None = None


class _BearerAuth(AuthBase):
    """Attach ``Authorization: Bearer`` when a token is present; keeps it out of reprs."""

    __slots__ = ("_token",)

    def __init__(self, token: str | None) -> None:
        """Keep the token for this one request."""
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set the header on the prepared request."""
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        """Hide the token."""
        return "_BearerAuth(<hidden>)"


def _origin(url: str) -> tuple[str, str, int | None]:
    """Return scheme, host and port of ``url`` for same-host checks."""
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _repo_path(full_name: str) -> str:
    """Build ``/repos/{owner}/{name}`` with both parts percent-encoded."""
    owner, _, name = full_name.strip().strip("/").partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"expected a repository name like 'owner/name', got {full_name!r}")
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


def _has_next_link(response: requests.Response) -> bool:
    """Tell whether the Link header names a next page."""
    header = response.headers.get("Link")
    if not header:
        return False
    return any("next" in link.get("rel", "").split() for link in parse_header_links(header))


def _is_object(payload: Any) -> str | None:
    """Require a JSON object."""
    return None if isinstance(payload, dict) else f"expected a JSON object, got {_kind(payload)}"


def _is_search_page(payload: Any) -> str | None:
    """Require a search page: an object with an integer total_count and a list of objects."""
    if not isinstance(payload, dict):
        return f"expected a JSON object, got {_kind(payload)}"
    total = payload.get("total_count")
    if not isinstance(total, int) or isinstance(total, bool):
        return "search answer has no integer total_count"
    items = payload.get("items")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return "search answer has no list of item objects"
    return None


def _kind(payload: Any) -> str:
    """Name the JSON type of ``payload`` for error texts."""
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(payload), type(payload).__name__
    )


def _describe_transport(exc: requests.RequestException) -> str:
    """Describe a transport failure without quoting URLs or headers."""
    name = type(exc).__name__
    if isinstance(exc, requests.Timeout):
        return f"request timed out ({name})"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed ({name})"
    return f"request failed ({name})"


# Configuration mistakes that retrying cannot fix; they propagate unchanged.
_NOT_TRANSPORT = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


class GitHubClient:
    """Client for the parts of the GitHub REST API that Trender uses.

    Every request is a GET with GitHub's JSON media type, the pinned API version and, when the
    token source has one, a bearer token. 5xx answers, transport failures and malformed bodies
    are retried with exponential backoff; rate limits are retried only when the policy returns
    a wait; all of them count against ``max_retries``. Redirects are followed only within the
    base URL's host. ``stats.requests`` counts every HTTP request sent (redirect hops and
    failed attempts included) and ``stats.errors`` every failed attempt, retried or not.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        token_source: TokenSource | None = None,
        *,
        rate_limit_policy: RateLimitPolicy | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_retries: int = 3,
        backoff_seconds: float = 1.0,
        readme_workers: int = 8,
        user_agent: str = DEFAULT_USER_AGENT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        require_token_for_code_search: bool = False,
        incomplete_retries: int = 0,
    ) -> None:
        """Configure the client; a session is created (and later closed) unless one is given."""
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if readme_workers < 1:
            raise ValueError("readme_workers must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self._base_url).path
        self._origin = _origin(self._base_url)
        self._token_source: TokenSource = token_source or StaticToken(None)
        self._policy: RateLimitPolicy = rate_limit_policy or NoRateLimitPolicy()
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._readme_workers = readme_workers
        self._user_agent = user_agent
        self._sleep = sleep
        self._require_token_for_code_search = require_token_for_code_search
        self._incomplete_retries = max(0, incomplete_retries)
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            pool = max(DEFAULT_POOL_SIZE, readme_workers)
            adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        self.stats = RequestStats()

    def __enter__(self) -> GitHubClient:
        """Return the client for use in a ``with`` block."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the client."""
        self.close()

    def close(self) -> None:
        """Close the HTTP session if the client created it."""
        if self._owns_session:
            self._session.close()

    @property
    def token_source(self) -> TokenSource:
        """Return the token source requests are authenticated with."""
        return self._token_source

    def report(self) -> dict[str, Any]:
        """Return the traffic counters plus the policy's budgets and waits, when it keeps them."""
        report = self.stats.as_dict()
        with self.stats._lock:
            free = dict(self.stats.not_modified_by_resource)
            report["incomplete_retries"] = self.stats.incomplete_retries
        # 304 answers are sent and counted in requests, but cost no primary budget.
        report["charged"] = {
            resource: count - free.get(resource, 0)
            for resource, count in report["requests"].items()
        }
        report["free"] = {"not_modified": free}
        snapshot = getattr(self._policy, "snapshot", None)
        if callable(snapshot):
            report["rate_limits"] = snapshot()
        return report

    def auth_status(self) -> dict[str, Any]:
        """Return the token source's non-secret state (type, refreshes, refresh-token expiry)."""
        status = getattr(self._token_source, "status", None)
        if callable(status):
            return dict(status())
        return {"auth_type": "pat" if self._token_source.token() else "anonymous"}

    # -- public API -------------------------------------------------------------------------

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` (relative to the base URL) and return the decoded JSON body."""
        _, payload = self._send(path, params)
        return payload

    def rate_limit(self) -> dict:
        """Return the ``/rate_limit`` document."""
        _, payload = self._send("/rate_limit", None, expect=_is_object)
        return payload

    def get_repository(self, full_name: str) -> dict:
        """Return the repository object, following the redirect of a renamed repository."""
        _, payload = self._send(_repo_path(full_name), None, expect=_is_object)
        return payload

    def search_repositories(
        self,
        query: str,
        *,
        limit: int,
        sort: str = "stars",
        order: str = "desc",
        per_page: int = 100,
    ) -> SearchResult:
        """Search repositories and collect up to ``limit`` items across pages."""
        extra = {"sort": sort, "order": order}
        return self._search("/search/repositories", query, limit, per_page, extra)

    def search_code(self, query: str, *, limit: int, per_page: int = 100) -> SearchResult:
        """Search code and collect up to ``limit`` items across pages.

        GitHub answers code search without a token with 401; when the client requires a token,
        it fails before sending anything.
        """
        if self._require_token_for_code_search and self._token_source.token() is None:
            raise GitHubCredentialError(
                "code search needs a token: GitHub answers anonymous code search with 401. Set "
                "a personal access token (password) or OAuth credentials in the GitHub "
                "connection",
                method="GET",
                path="/search/code",
            )
        return self._search("/search/code", query, limit, per_page, {})

    def get_readme(self, full_name: str, *, etag: str | None = None) -> Readme:
        """Fetch and decode a README; a 404 gives ``missing`` and a 304 gives ``not_modified``."""
        headers = {"If-None-Match": etag} if etag else None
        try:
            response, payload = self._send(
                _repo_path(full_name) + "/readme",
                None,
                extra_headers=headers,
                allow_not_modified=etag is not None,
                expect=_is_object,
            )
        except GitHubNotFound:
            log.debug("%s has no README", full_name)
            return Readme(full_name, None, None, None, None, None, missing=True)
        if payload is None:
            return Readme(full_name, None, None, None, None, etag, not_modified=True)
        text, note = decode_readme_payload(payload)
        if text is None:
            log.warning("README of %s has no usable text: %s", full_name, note)
        elif note:
            log.debug("README of %s decoded with a note: %s", full_name, note)
        path, sha, size = payload.get("path"), payload.get("sha"), payload.get("size")
        return Readme(
            full_name=full_name,
            path=path if isinstance(path, str) else None,
            text=text,
            sha=sha if isinstance(sha, str) else None,
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            etag=response.headers.get("ETag"),
            decode_note=note,
        )

    def get_readmes(
        self, full_names: Sequence[str], *, etags: Mapping[str, str] | None = None
    ) -> dict[str, Readme | GitHubError]:
        """Fetch many READMEs concurrently; a failure maps to its error instead of raising.

        Duplicate names are fetched once. A malformed name still raises ``ValueError``.
        """
        names = list(dict.fromkeys(full_names))
        if not names:
            return {}
        known = etags or {}
        workers = min(self._readme_workers, len(names))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="readme") as pool:
            futures = {
                name: pool.submit(self._readme_or_error, name, known.get(name)) for name in names
            }
            results = {name: future.result() for name, future in futures.items()}
        failed = sum(isinstance(result, GitHubError) for result in results.values())
        missing = sum(isinstance(r, Readme) and r.missing for r in results.values())
        unchanged = sum(isinstance(r, Readme) and r.not_modified for r in results.values())
        log.info(
            "fetched %d READMEs: %d with text, %d not modified, %d missing, %d failed",
            len(names),
            len(names) - failed - missing - unchanged,
            unchanged,
            missing,
            failed,
        )
        return results

    # -- internals --------------------------------------------------------------------------

    def _readme_or_error(self, full_name: str, etag: str | None) -> Readme | GitHubError:
        """Fetch one README, returning the error instead of raising it."""
        try:
            return self.get_readme(full_name, etag=etag)
        except GitHubError as error:
            log.warning("README of %s failed: %s", full_name, error)
            return error

    def _search(
        self, path: str, query: str, limit: int, per_page: int, extra: Mapping[str, str]
    ) -> SearchResult:
        """Page through a search endpoint until the limit, the last page or the result cap."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        size = max(1, min(per_page, limit, MAX_PER_PAGE))
        items: list[dict] = []
        pages: list[SearchPage] = []
        total_count = 0
        incomplete = False
        page = 1
        while True:
            params = {"q": query, **extra, "per_page": size, "page": page}
            try:
                response, body, attempts = self._search_page(path, params)
            except GitHubValidationError as error:
                if not error.is_search_cap:
                    raise
                log.info(
                    "search %s stopped before page %d: GitHub serves only the first %d results",
                    path,
                    page,
                    SEARCH_RESULT_CAP,
                )
                break
            page_items = body["items"]
            total_count = body["total_count"]
            page_incomplete = bool(body.get("incomplete_results", False))
            incomplete = incomplete or page_incomplete
            items.extend(page_items)
            pages.append(
                SearchPage(page, total_count, page_incomplete, len(page_items), query, attempts)
            )
            log.info(
                "search %s page %d: %d items (%d collected, total_count %d)",
                path,
                page,
                len(page_items),
                len(items),
                total_count,
            )
            if len(items) >= limit:
                break
            # GitHub's Link header decides, not the page size: code search returns short pages
            # (29 of 30, say) that still link to more results.
            has_next = _has_next_link(response)
            if not page_items:
                break
            if not has_next:
                break
            if page * size >= SEARCH_RESULT_CAP:
                log.info(
                    "search %s stopped after page %d: GitHub serves only the first %d results",
                    path,
                    page,
                    SEARCH_RESULT_CAP,
                )
                break
            page += 1
        return SearchResult(query, total_count, incomplete, items[:limit], pages)

    def _search_page(
        self, path: str, params: Mapping[str, Any]
    ) -> tuple[requests.Response, Any, int]:
        """Fetch one search page, asking again (bounded) while GitHub flags it incomplete."""
        attempts = 0
        while True:
            response, body = self._send(path, params, expect=_is_search_page)
            attempts += 1
            if not body.get("incomplete_results", False):
                return response, body, attempts
            if attempts > self._incomplete_retries:
                log.warning(
                    "search %s page %s is still incomplete after %d attempts; keeping it, "
                    "flagged incomplete",
                    path, params.get("page"), attempts,
                )  # fmt: skip
                return response, body, attempts
            wait = self._backoff * 2 ** (attempts - 1)
            self.stats.record_incomplete_retry()
            log.warning(
                "search %s page %s came back incomplete (GitHub timed out); asking again in %.1fs",
                path, params.get("page"), wait,
            )  # fmt: skip
            self._sleep(wait)

    def _display_path(self, url: str) -> str:
        """Return the API path of ``url`` (no query string) for errors and logs."""
        path = urlsplit(url).path
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :]
        return path or "/"

    def _send(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        allow_not_modified: bool = False,
        expect: Callable[[Any], str | None] | None = None,
    ) -> tuple[requests.Response, Any]:
        """Send a GET with retries, the 401 replay and error mapping; return response and JSON.

        The JSON is None for a 304 answer.
        """
        path = "/" + path.lstrip("/")
        resource = resource_for_path(path)
        attempt = 0
        replayed_auth = False
        while True:
            try:
                return self._attempt(
                    path, params, resource, extra_headers, allow_not_modified, expect
                )
            except GitHubError as error:
                self.stats.record_error(error)
                if isinstance(error, GitHubCredentialError):
                    raise  # the token source needs an operator; neither retry nor replay helps
                if isinstance(error, GitHubAuthError) and not replayed_auth:
                    replayed_auth = True
                    if self._token_source.on_unauthorized():
                        log.warning(
                            "GitHub rejected the token for GET %s; replaying once with a new one",
                            error.path,
                        )
                        self.stats.record_retry(0.0)
                        continue
                    raise
                wait = self._retry_delay(error, attempt)
                if wait is None:
                    raise
                attempt += 1
                self.stats.record_retry(wait)
                log.warning("%s; retry %d of %d in %.1fs", error, attempt, self._max_retries, wait)
                self._sleep(wait)

    def _retry_delay(self, error: GitHubError, attempt: int) -> float | None:
        """Return the seconds to wait before retrying ``error``, or None to raise it."""
        if attempt >= self._max_retries:
            return None
        if isinstance(error, GitHubRateLimitError):
            return self._policy.wait_for(error, attempt)
        if isinstance(error, (GitHubServerError, GitHubTransportError, GitHubResponseError)):
            return self._backoff * 2**attempt
        return None

    def _attempt(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        resource: str,
        extra_headers: Mapping[str, str] | None,
        allow_not_modified: bool,
        expect: Callable[[Any], str | None] | None,
    ) -> tuple[requests.Response, Any]:
        """Send one request, following same-host redirects, and validate the answer."""
        method = "GET"
        url = self._base_url + path
        headers = {
            "Accept": ACCEPT_JSON,
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": self._user_agent,
            **(extra_headers or {}),
        }
        for _ in range(MAX_REDIRECTS + 1):
            shown = self._display_path(url)
            auth = self._auth(shown)
            self._policy.before_request(resource)
            self.stats.record_request(resource)
            response = self._get_once(method, url, params, headers, auth)
            if isinstance(response, str):
                raise GitHubTransportError(response, method=method, path=shown)
            status = response.status_code
            self._policy.after_response(resource, response.headers, status)
            log.debug("GitHub %s %s answered %d", method, shown, status)
            error = classify_response(
                status, response.headers, response.content, method=method, path=shown
            )
            if error is not None:
                raise error
            if status in REDIRECT_STATUSES:
                url = self._redirect_target(url, response, shown)
                params = None  # the Location already carries any query string
                continue
            details = {
                "status": status,
                "method": method,
                "path": shown,
                "request_id": response.headers.get("X-GitHub-Request-Id"),
            }
            if status == NOT_MODIFIED:
                if not allow_not_modified:
                    raise GitHubResponseError("unexpected 304 Not Modified", **details)
                self.stats.record_not_modified(resource)
                return response, None
            try:
                if not response.content:
                    raise ValueError("empty body")
                payload = json.loads(response.content)
            except ValueError:
                content_type = response.headers.get("Content-Type", "unknown")
                raise GitHubResponseError(
                    f"expected JSON, got {len(response.content)} bytes of {content_type}",
                    **details,
                ) from None
            problem = expect(payload) if expect is not None else None
            if problem:
                raise GitHubResponseError(problem, **details)
            return response, payload
        raise GitHubResponseError(
            f"more than {MAX_REDIRECTS} redirects", method=method, path=self._display_path(url)
        )

    def _get_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        auth: _BearerAuth,
    ) -> requests.Response | str:
        """Send one HTTP request; return the response or a description of the transport failure.

        The requests exception is not chained to the error raised later: it holds the prepared
        request, Authorization header included.
        """
        try:
            return self._session.request(
                method,
                url,
                params=params,
                headers=headers,
                auth=auth,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except _NOT_TRANSPORT:
            raise
        except requests.RequestException as exc:
            return _describe_transport(exc)

    def _auth(self, shown: str) -> _BearerAuth:
        """Build the per-request authentication from the token source."""
        token = self._token_source.token()
        if token is not None and (not token.isprintable() or any(c.isspace() for c in token)):
            # http.client would quote the header value in its error; fail without it instead.
            raise GitHubAuthError("token contains whitespace or control characters", path=shown)
        return _BearerAuth(token)

    def _redirect_target(self, url: str, response: requests.Response, shown: str) -> str:
        """Return where a redirect points, refusing to leave the configured host."""
        location = response.headers.get("Location")
        details = {
            "status": response.status_code,
            "path": shown,
            "request_id": response.headers.get("X-GitHub-Request-Id"),
        }
        if not location:
            raise GitHubResponseError("redirect without a Location header", **details)
        target = urljoin(url, location)
        if _origin(target) != self._origin:
            raise GitHubResponseError("redirect to another host refused", **details)
        log.info(
            "following %d redirect from %s to %s",
            response.status_code,
            shown,
            self._display_path(target),
        )
        return target
