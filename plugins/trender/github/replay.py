"""Serve a local replay of the GitHub REST API from the bundled synthetic snapshot.

The replay answers the endpoints Trender uses (repository and code search with their qualifiers,
repository, README, rate limit, authenticated user) with GitHub's body shapes and headers: per
resource rate limits in fixed windows, ETags with 304 answers, pagination ``Link`` headers and the
1000-result search cap. Snapshot timestamps are shifted so the data reads as current on the date it
is served, and tests can script faults (status sequences, delays, dropped connections, malformed
and HTML bodies, primary and secondary rate limits with GitHub's header semantics).

With :meth:`ReplayServer.enable_oauth` it also plays GitHub's OAuth endpoints: the refresh-token
grant with single-use rotating refresh tokens and 8-hour access tokens on the server's clock,
the device flow, and the HTTP-200 error answers; API routes then check bearer tokens.

Run it standalone with ``python -m trender.github.replay --port 0``.
"""

from __future__ import annotations

import argparse
import base64
import collections
import copy
import datetime
import email.utils
import fnmatch
import hashlib
import itertools
import json
import logging
import math
import os
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from trender.github.net import is_loopback

logger = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1  # the snapshot layout this module understands
SNAPSHOT_ENV = "TRENDER_REPLAY_SNAPSHOT"  # overrides the bundled snapshot path
BUNDLED_SNAPSHOT = Path(__file__).resolve().parents[3] / "include" / "replay" / "snapshot.json"

API_VERSION = "2022-11-28"  # the REST API version GitHub reports for un-versioned requests
API_ROOT = "https://api.github.com"
SEARCH_RESULT_CAP = 1000  # GitHub serves only the first 1000 results of any search
DEFAULT_PER_PAGE = 30  # GitHub's page size when per_page is absent
MAX_PER_PAGE = 100  # GitHub silently clamps larger per_page values to 100
BASE64_LINE_LENGTH = 60  # the contents API wraps base64 content every 60 characters
SHUTDOWN_POLL_SECONDS = 0.05  # how often the serving loop checks for stop(); keeps stop() quick
IDLE_CONNECTION_SECONDS = 30  # close idle keep-alive connections so stop() never waits on them
TIMESTAMP_FIELDS = ("created_at", "updated_at", "pushed_at")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

DEFAULT_LIMITS = {"core": 5000, "search": 30, "code_search": 10, "graphql": 5000}  # per token
RATE_WINDOW_SECONDS = {"core": 3600, "search": 60, "code_search": 60, "graphql": 3600}

JSON_TYPE = "application/json; charset=utf-8"
RAW_TYPE = "application/vnd.github.raw; charset=utf-8"
RAW_ACCEPT_MARKERS = ("application/vnd.github.raw", "application/vnd.github.v3.raw")

SEARCH_DOCS = "https://docs.github.com/v3/search/"
REPO_DOCS = "https://docs.github.com/rest/repos/repos#get-a-repository"
README_DOCS = "https://docs.github.com/rest/repos/contents#get-a-repository-readme"
CODE_SEARCH_DOCS = "https://docs.github.com/rest/search/search#search-code"
REDIRECT_DOCS = "https://docs.github.com/v3/#http-redirects"
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
USER_DOCS = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
GENERIC_DOCS = "https://docs.github.com/rest"
SECONDARY_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
OAUTH_ERROR_DOCS = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors/"
)
TOKEN_PATH = "/login/oauth/access_token"
DEVICE_CODE_PATH = "/login/device/code"
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
ACCESS_TOKEN_SECONDS = 8 * 3600  # GitHub App user access tokens live 8 hours
REFRESH_TOKEN_SECONDS = 15811200  # ... and their refresh tokens about 6 months
DEVICE_CODE_SECONDS = 900  # device codes expire after 15 minutes
DEVICE_INTERVAL_SECONDS = 5  # the minimum polling interval GitHub announces
DEVICE_SLOW_DOWN_SECONDS = 5  # added to the interval after each slow_down
OAUTH_ERRORS = {  # the descriptions GitHub sends with each OAuth error code
    "bad_refresh_token": "The refresh token passed is incorrect or expired.",
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "authorization_pending": "The authorization request is still pending.",
    "slow_down": "Too many requests have been made in the same timeframe.",
    "expired_token": "The device code has expired.",
    "incorrect_device_code": "The device_code provided is not valid.",
    "access_denied": "The authorization request was denied.",
    "unsupported_grant_type": "The grant type is not supported.",
}

REPO_QUALIFIERS = frozenset(
    {"language", "created", "pushed", "updated", "stars", "fork", "archived", "is"}
)
CODE_QUALIFIERS = frozenset({"filename", "path", "language", "repo", "fork", "extension"})
CODE_LANGUAGE_SUFFIXES = {  # code search infers a file's language from its name
    "yaml": (".yaml", ".yml"),
    "python": (".py",),
    "go": (".go",),
    "typescript": (".ts", ".tsx"),
    "javascript": (".js", ".mjs", ".cjs"),
    "markdown": (".md",),
    "dockerfile": ("dockerfile",),
}
MINIMAL_REPO_SKIP_FROM = "created_at"  # code search repositories stop before this field

REPLAY_USER: dict[str, Any] = {
    "login": "replay-user",
    "id": 1,
    "node_id": "U_kgDOAAAAAQ",
    "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
    "gravatar_id": "",
    "url": f"{API_ROOT}/users/replay-user",
    "html_url": "https://github.com/replay-user",
    "type": "User",
    "user_view_type": "public",
    "site_admin": False,
    "name": "Replay User",
    "company": None,
    "blog": "",
    "location": None,
    "email": None,
    "bio": "Synthetic account of the Trender replay server.",
    "public_repos": 0,
    "followers": 0,
    "following": 0,
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
}


@dataclass
class Fault:
    """A scripted answer that replaces the normal response to one request.

    ``rate_limit`` makes the answer a rate limit built when it is served: ``"primary"``
    exhausts the route's budget until ``reset_in_seconds`` from the server's clock (default:
    the budget's window) and answers with ``x-ratelimit-remaining: 0`` and the reset time;
    ``"secondary"`` answers GitHub's secondary-limit message, with ``retry-after`` when
    ``retry_after`` is set.
    """

    status: int = 502
    body: str | bytes | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    drop: bool = False
    rate_limit: str | None = None
    retry_after: float | None = None
    reset_in_seconds: float | None = None


def html_error(status: int = 503, title: str = "Unicorn! &middot; GitHub") -> Fault:
    """Return an HTML error page like the one GitHub's front end serves when it is overloaded."""
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>No server is currently available to service "
        "your request.</h1></body></html>"
    )
    return Fault(status, page, {"Content-Type": "text/html; charset=utf-8"})


def malformed_json(status: int = 200) -> Fault:
    """Return a JSON answer cut off mid-body."""
    return Fault(status, '{"total_count": 3, "incomplete_results": false, "items": [{"id": ')


def slow(seconds: float, status: int = 200, body: Any = None) -> Fault:
    """Return an answer delayed by ``seconds`` (longer than a client timeout: a timeout)."""
    return Fault(status, body if body is not None else {}, delay_seconds=seconds)


def dropped() -> Fault:
    """Return a fault that closes the connection without answering."""
    return Fault(drop=True)


def primary_rate_limit(reset_in_seconds: float | None = None) -> Fault:
    """Return a primary rate limit on the route's resource."""
    return Fault(403, rate_limit="primary", reset_in_seconds=reset_in_seconds)


def secondary_rate_limit(retry_after: float | None = None, status: int = 403) -> Fault:
    """Return a secondary rate limit (status 403 or 429), with retry-after when given."""
    return Fault(status, rate_limit="secondary", retry_after=retry_after)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received; ``status`` is 0 when the connection was dropped."""

    method: str
    path: str
    query: dict[str, str]
    has_authorization: bool
    status: int


class QueryError(ValueError):
    """A search query the API would reject with 422."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Response:
    """A response before the common headers are added."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    charge: bool = True
    delay_seconds: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class Request:
    """The parts of an HTTP request the routes look at."""

    method: str
    path: str
    query_pairs: list[tuple[str, str]]
    headers: Mapping[str, str]
    request_id: str
    body: bytes = b""

    @property
    def form(self) -> dict[str, str]:
        """Return the body's fields, sent as JSON or form-encoded."""
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            return dict(parse_qsl(self.body.decode("utf-8", "replace")))
        if not isinstance(value, dict):
            return {}
        return {key: "" if item is None else str(item) for key, item in value.items()}

    @property
    def bearer(self) -> str | None:
        """Return the token of an ``Authorization: Bearer`` (or ``token``) header."""
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        return None

    @property
    def query(self) -> dict[str, str]:
        """Return the query parameters, the last value winning."""
        return dict(self.query_pairs)

    @property
    def has_authorization(self) -> bool:
        """Tell whether the request carried credentials."""
        return bool(self.headers.get("Authorization"))


def json_bytes(value: Any) -> bytes:
    """Encode a JSON body the way GitHub sends it: compact UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, value: Any, **kwargs: Any) -> Response:
    """Build a JSON response."""
    return Response(status, json_bytes(value), {"Content-Type": JSON_TYPE}, **kwargs)


def not_found(documentation_url: str = GENERIC_DOCS) -> Response:
    """Build GitHub's 404 answer."""
    body = {"message": "Not Found", "documentation_url": documentation_url, "status": "404"}
    return json_response(404, body)


def validation_failed(message: str, code: str = "invalid") -> Response:
    """Build the 422 answer GitHub gives for a search query it cannot run."""
    error = {"resource": "Search", "field": "q", "code": code, "message": message}
    body = {"message": "Validation Failed", "errors": [error], "documentation_url": SEARCH_DOCS}
    return json_response(422, body)


def load_snapshot(source: str | os.PathLike[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Load a snapshot from a mapping, a path, ``$TRENDER_REPLAY_SNAPSHOT`` or the bundled file."""
    if isinstance(source, Mapping):
        snapshot = dict(source)
    else:
        path = Path(source or os.environ.get(SNAPSHOT_ENV) or BUNDLED_SNAPSHOT)
        with path.open(encoding="utf-8") as handle:
            snapshot = json.load(handle)
    if snapshot.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(
            f"Unsupported replay snapshot format {snapshot.get('format')!r}; "
            f"expected {SNAPSHOT_FORMAT}."
        )
    return snapshot


def parse_timestamp(text: str) -> datetime.datetime:
    """Parse a GitHub ``YYYY-MM-DDTHH:MM:SSZ`` timestamp as an aware UTC datetime."""
    return datetime.datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=datetime.UTC)


def shift_timestamp(text: str | None, days: int) -> str | None:
    """Move a timestamp by whole days, keeping its time of day."""
    if text is None:
        return None
    moved = parse_timestamp(text) + datetime.timedelta(days=days)
    return moved.strftime(TIMESTAMP_FORMAT)


@dataclass
class ServedRepo:
    """A repository as served on one day: shifted object, README and searchable files."""

    repo: dict[str, Any]
    readme: tuple[str, bytes] | None
    files: tuple[str, ...]


@dataclass
class DayState:
    """Everything the routes need for one snapshot day."""

    repos: dict[int, ServedRepo]
    names: dict[str, int]
    moved: dict[str, int]

    def ordered(self) -> list[ServedRepo]:
        """Return the served repositories in id order."""
        return [self.repos[repo_id] for repo_id in sorted(self.repos)]


def decode_readme(value: Mapping[str, str] | None) -> tuple[str, bytes] | None:
    """Decode a snapshot README entry into its path and raw bytes."""
    if value is None:
        return None
    return value["path"], base64.b64decode(value["content_b64"])


def rename_repo(repo: dict[str, Any], new_full_name: str) -> None:
    """Rename a repository object in place, rewriting every URL that carries its name."""
    old = repo["full_name"]
    for key, value in repo.items():
        if isinstance(value, str) and key not in ("description", "homepage"):
            value = value.replace(f"/{old}", f"/{new_full_name}")
            repo[key] = value.replace(f":{old}.git", f":{new_full_name}.git")
    repo["full_name"] = new_full_name
    repo["name"] = new_full_name.split("/", 1)[1]


def build_day_state(snapshot: Mapping[str, Any], day: int, shift_days: int) -> DayState:
    """Apply the changes of days 1..day to day 0 and shift every timestamp."""
    if day < 0:
        raise ValueError(f"Snapshot day must be 0 or more, got {day}.")
    repos: dict[int, dict[str, Any]] = {}
    readmes: dict[int, tuple[str, bytes] | None] = {}
    files: dict[int, tuple[str, ...]] = {}
    for entry in snapshot["repositories"]:
        repo_id = entry["repo"]["id"]
        repos[repo_id] = copy.deepcopy(entry["repo"])
        readmes[repo_id] = decode_readme(entry.get("readme"))
        files[repo_id] = tuple(entry.get("root_files", [])) + tuple(entry.get("nested_files", []))

    former_names: dict[str, int] = {}
    days = snapshot.get("days", {})
    for number in range(1, day + 1):
        for change in days.get(str(number), {}).get("changes", []):
            repo = repos[change["id"]]
            for key, value in change["set"].items():
                if key == "readme":
                    readmes[change["id"]] = decode_readme(value)
                elif key == "full_name":
                    former_names[repo["full_name"].lower()] = change["id"]
                    rename_repo(repo, value)
                elif key == "name":
                    if "full_name" not in change["set"]:
                        former_names[repo["full_name"].lower()] = change["id"]
                        rename_repo(repo, f"{repo['owner']['login']}/{value}")
                else:
                    repo[key] = value
                if key == "stargazers_count":
                    repo["watchers_count"] = repo["watchers"] = value
    absent = set(days.get(str(day), {}).get("absent", [])) if day else set()

    served: dict[int, ServedRepo] = {}
    for repo_id, repo in repos.items():
        if repo_id in absent:
            continue
        for key in TIMESTAMP_FIELDS:
            if key in repo:
                repo[key] = shift_timestamp(repo[key], shift_days)
        served[repo_id] = ServedRepo(repo, readmes[repo_id], files[repo_id])
    names = {repo["full_name"].lower(): repo_id for repo_id, repo in repos.items()}
    moved = {name: repo_id for name, repo_id in former_names.items() if name not in names}
    return DayState(served, {n: i for n, i in names.items() if i in served}, moved)


TOKEN_PATTERN = re.compile(r'[^\s"]+:"[^"]*"|"[^"]*"|\S+')
QUALIFIER_PATTERN = re.compile(r"^([A-Za-z][A-Za-z_-]*):(.*)$")


@dataclass(frozen=True)
class SearchQuery:
    """A parsed ``q`` parameter: free-text terms and ``name:value`` qualifiers."""

    terms: tuple[str, ...]
    qualifiers: tuple[tuple[str, str], ...]

    def values(self, name: str) -> list[str]:
        """Return every value given for one qualifier."""
        return [value for key, value in self.qualifiers if key == name]


def parse_query(q: str | None, allowed: Iterable[str]) -> SearchQuery:
    """Split a search query into terms and qualifiers, rejecting unknown qualifiers."""
    if q is None or not q.strip():
        raise QueryError("The q parameter is missing.", "missing")
    allowed = frozenset(allowed)
    terms: list[str] = []
    qualifiers: list[tuple[str, str]] = []
    for token in TOKEN_PATTERN.findall(q):
        match = QUALIFIER_PATTERN.match(token)
        if match is None:
            terms.append(token.strip('"').lower())
            continue
        name, value = match.group(1).lower(), match.group(2).strip('"')
        if name not in allowed:
            raise QueryError(f"The '{name}' qualifier is not supported by this search.")
        qualifiers.append((name, value))
    return SearchQuery(tuple(term for term in terms if term), tuple(qualifiers))


@dataclass(frozen=True)
class Range:
    """A qualifier range such as ``>=5``, ``2026-01-01..*`` or an exact value."""

    low: Any = None
    low_inclusive: bool = True
    high: Any = None
    high_inclusive: bool = True

    def contains(self, value: Any) -> bool:
        """Tell whether a value lies inside the range."""
        if self.low is not None:
            low = comparable(self.low, value)
            if low < self.low or (low == self.low and not self.low_inclusive):
                return False
        if self.high is not None:
            high = comparable(self.high, value)
            if high > self.high or (high == self.high and not self.high_inclusive):
                return False
        return True


def comparable(bound: Any, value: Any) -> Any:
    """Reduce a timestamp to a date when the bound is a plain date."""
    is_datetime = isinstance(value, datetime.datetime)
    if is_datetime and not isinstance(bound, datetime.datetime):
        return value.date()
    return value


def parse_range(text: str, convert: Callable[[str], Any]) -> Range:
    """Parse ``>X``, ``>=X``, ``<X``, ``<=X``, ``X..Y`` (either side may be ``*``) or ``X``."""
    if ".." in text:
        low, high = text.split("..", 1)
        return Range(
            low=None if low == "*" else convert(low), high=None if high == "*" else convert(high)
        )
    for prefix, inclusive in ((">=", True), ("<=", True), (">", False), ("<", False)):
        if text.startswith(prefix):
            bound = convert(text[len(prefix) :])
            if prefix.startswith(">"):
                return Range(low=bound, low_inclusive=inclusive)
            return Range(high=bound, high_inclusive=inclusive)
    bound = convert(text)
    return Range(low=bound, high=bound)


def parse_date_bound(text: str) -> datetime.date:
    """Parse a date qualifier value: ``YYYY-MM-DD`` or a full ISO datetime."""
    try:
        if len(text) == 10:
            return datetime.date.fromisoformat(text)
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise QueryError(f"'{text}' is not a valid date.") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def parse_int_bound(text: str) -> int:
    """Parse an integer qualifier value."""
    try:
        return int(text)
    except ValueError as error:
        raise QueryError(f"'{text}' is not a valid number.") from error


def fork_filter(query: SearchQuery) -> Callable[[bool], bool]:
    """Return the fork rule: forks are excluded unless ``fork:true`` or ``fork:only``."""
    values = [value.lower() for value in query.values("fork")]
    mode = values[-1] if values else "false"
    if mode not in ("true", "false", "only"):
        raise QueryError(f"'{mode}' is not a valid value for the fork qualifier.")
    return {"true": lambda fork: True, "false": lambda fork: not fork, "only": bool}[mode]


def repository_filter(query: SearchQuery) -> Callable[[dict[str, Any]], bool]:
    """Compile a repository search query into a predicate over repository objects."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    languages = {value.lower() for value in query.values("language")}
    if languages:
        checks.append(lambda repo: (repo.get("language") or "").lower() in languages)
    for name in ("created", "pushed", "updated"):
        for value in query.values(name):
            window = parse_range(value, parse_date_bound)
            key = f"{name}_at"
            checks.append(
                lambda repo, w=window, k=key: (
                    repo.get(k) is not None and w.contains(parse_timestamp(repo[k]))
                )
            )
    for value in query.values("stars"):
        stars = parse_range(value, parse_int_bound)
        checks.append(lambda repo, s=stars: s.contains(repo["stargazers_count"]))
    fork_ok = fork_filter(query)
    checks.append(lambda repo: fork_ok(bool(repo.get("fork"))))
    for value in query.values("archived"):
        if value.lower() not in ("true", "false"):
            raise QueryError(f"'{value}' is not a valid value for the archived qualifier.")
        wanted = value.lower() == "true"
        checks.append(lambda repo, a=wanted: bool(repo.get("archived")) == a)
    for value in query.values("is"):
        if value.lower() not in ("public", "private"):
            raise QueryError(f"'is:{value}' is not supported by this search.")
        wanted_private = value.lower() == "private"
        checks.append(lambda repo, p=wanted_private: bool(repo.get("private")) == p)
    for term in query.terms:
        checks.append(
            lambda repo, t=term: (
                t in repo["name"].lower() or t in (repo.get("description") or "").lower()
            )
        )
    return lambda repo: all(check(repo) for check in checks)


def code_filter(query: SearchQuery) -> Callable[[dict[str, Any], str], bool]:
    """Compile a code search query into a predicate over (repository, file path)."""
    checks: list[Callable[[dict[str, Any], str], bool]] = []
    for value in query.values("filename"):
        name = value.lower()
        checks.append(lambda repo, path, n=name: path.rsplit("/", 1)[-1].lower() == n)
    for value in query.values("extension"):
        suffix = "." + value.lower().lstrip(".")
        checks.append(lambda repo, path, s=suffix: path.lower().endswith(s))
    for value in query.values("path"):
        folder = value.strip("/").lower()
        checks.append(lambda repo, path, f=folder: in_folder(path.lower(), f))
    languages = [value.lower() for value in query.values("language")]
    if languages:
        suffixes = tuple(s for lang in languages for s in CODE_LANGUAGE_SUFFIXES.get(lang, ()))
        checks.append(lambda repo, path: bool(suffixes) and path.lower().endswith(suffixes))
    for value in query.values("repo"):
        full_name = value.lower()
        checks.append(lambda repo, path, f=full_name: repo["full_name"].lower() == f)
    fork_ok = fork_filter(query)
    checks.append(lambda repo, path: fork_ok(bool(repo.get("fork"))))
    for term in query.terms:
        checks.append(
            lambda repo, path, t=term: t in path.lower() or t in repo["full_name"].lower()
        )
    return lambda repo, path: all(check(repo, path) for check in checks)


def in_folder(path: str, folder: str) -> bool:
    """Tell whether a file lies in a folder or below it; ``""`` is the repository root only."""
    directory = path.rsplit("/", 1)[0] if "/" in path else ""
    if not folder:
        return directory == ""
    return directory == folder or directory.startswith(folder + "/")


@dataclass
class Bucket:
    """One resource's budget in a fixed window."""

    limit: int
    window_seconds: int
    used: int = 0
    reset: int | None = None


@dataclass(frozen=True)
class BudgetState:
    """A resource's budget as reported in headers and by ``/rate_limit``."""

    resource: str
    limit: int
    used: int
    reset: int

    @property
    def remaining(self) -> int:
        """Return the requests left in this window."""
        return max(0, self.limit - self.used)

    def as_json(self) -> dict[str, int]:
        """Return the ``/rate_limit`` entry for this resource."""
        return {
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "reset": self.reset,
        }

    def headers(self) -> dict[str, str]:
        """Return the ``x-ratelimit-*`` headers for this resource."""
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": self.resource,
        }


class RateLimiter:
    """Per-resource request budgets in fixed windows that start with the first request."""

    def __init__(self, limits: Mapping[str, int] | None, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        merged = {**DEFAULT_LIMITS, **(limits or {})}
        self._buckets = {
            name: Bucket(limit, RATE_WINDOW_SECONDS.get(name, 3600))
            for name, limit in merged.items()
        }

    def set_limit(self, resource: str, limit: int) -> None:
        """Change a resource's limit; the current window keeps its usage."""
        with self._lock:
            bucket = self._buckets.setdefault(resource, Bucket(limit, 3600))
            bucket.limit = limit

    def _roll(self, bucket: Bucket, now: float) -> None:
        if bucket.reset is not None and now >= bucket.reset:
            bucket.used = 0
            bucket.reset = None

    def _state(self, resource: str, bucket: Bucket, now: float) -> BudgetState:
        reset = bucket.reset if bucket.reset is not None else int(now) + bucket.window_seconds
        return BudgetState(resource, bucket.limit, bucket.used, reset)

    def peek(self, resource: str) -> BudgetState:
        """Report a resource's budget without spending any of it."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets[resource]
            self._roll(bucket, now)
            return self._state(resource, bucket, now)

    def consume(self, resource: str) -> tuple[bool, BudgetState]:
        """Spend one request if the budget allows it; return whether it did and the new state."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets[resource]
            self._roll(bucket, now)
            if bucket.used >= bucket.limit:
                return False, self._state(resource, bucket, now)
            if bucket.reset is None:
                bucket.reset = int(now) + bucket.window_seconds
            bucket.used += 1
            return True, self._state(resource, bucket, now)

    def exhaust(self, resource: str, reset_at: int) -> BudgetState:
        """Spend a resource's whole budget until ``reset_at`` (server UNIX time)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets[resource]
            self._roll(bucket, now)
            bucket.used = bucket.limit
            bucket.reset = reset_at
            return self._state(resource, bucket, now)

    def resources(self) -> list[str]:
        """Return the known resource names."""
        with self._lock:
            return list(self._buckets)


@dataclass
class IssuedToken:
    """A token the OAuth endpoint handed out."""

    expires_at: float | None
    used: bool = False
    pair: str | None = None  # a refresh token's access token


@dataclass
class DeviceGrant:
    """A device flow in progress."""

    device_code: str
    user_code: str
    expires_at: float
    interval: int
    last_poll: float | None = None
    approved: bool = False
    pending_polls: int = 0


@dataclass
class OAuthApp:
    """The OAuth application the server plays, with every token it issued."""

    client_id: str
    client_secret: str
    access_seconds: int = ACCESS_TOKEN_SECONDS
    refresh_seconds: int = REFRESH_TOKEN_SECONDS
    device_interval: int = DEVICE_INTERVAL_SECONDS
    auto_approve_after_polls: int | None = None
    revoke_replaced_access: bool = True
    access: dict[str, IssuedToken] = field(default_factory=dict)
    refresh: dict[str, IssuedToken] = field(default_factory=dict)
    devices: dict[str, DeviceGrant] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)


def oauth_error_body(code: str) -> dict[str, str]:
    """Return the body GitHub sends (with HTTP 200) for an OAuth error code."""
    anchor = code.replace("_", "-")
    return {
        "error": code,
        "error_description": OAUTH_ERRORS.get(code, code),
        "error_uri": f"{OAUTH_ERROR_DOCS}#{anchor}",
    }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], replay: ReplayServer) -> None:
        self.replay = replay
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed exchange (usually a client that hung up) instead of printing it."""
        error = sys.exc_info()[1]
        logger.debug("Replay exchange with %s failed: %r", client_address, error)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_SECONDS

    def do_GET(self) -> None:
        """Answer a GET request."""
        self.server.replay._serve(self)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def version_string(self) -> str:
        """Name the server in the ``Server`` header."""
        return "trender-replay"

    def log_message(self, format: str, *args: Any) -> None:
        """Send the access log to the module logger at DEBUG instead of stderr."""
        logger.debug("replay %s %s", self.address_string(), format % args)


class ReplayServer:
    """A loopback HTTP server that answers like the GitHub REST API from a snapshot."""

    def __init__(
        self,
        snapshot: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        as_of: datetime.date | None = None,
        day: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        require_token_for_code_search: bool = False,
        limits: Mapping[str, int] | None = None,
        latency_seconds: float = 0.0,
        latency_jitter: float = 0.0,
        jitter_seed: int = 20261203,
    ) -> None:
        self._snapshot = load_snapshot(snapshot)
        self._anchor = datetime.date.fromisoformat(self._snapshot["anchor_date"])
        self._as_of = as_of
        self._day = day
        self.host = host
        self.port = port
        self.clock = clock
        self.require_token_for_code_search = require_token_for_code_search
        self.latency_seconds = latency_seconds
        # GitHub-like jitter: each response's latency is latency_seconds times a log-normal
        # factor with this sigma (median unchanged, a long tail); 0 keeps it fixed.
        self.latency_jitter = latency_jitter
        self._jitter = random.Random(jitter_seed)
        self.limiter = RateLimiter(limits, clock)
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._faults: dict[str, collections.deque[Fault]] = {}
        self._ids = itertools.count(1)
        self.oauth: OAuthApp | None = None
        self._route_delays: dict[str, float] = {}
        self._incomplete: dict[str, int] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._state = self._build_state()

    @property
    def url(self) -> str:
        """Return the base URL, available once the server is started."""
        if self._httpd is None:
            raise RuntimeError("The replay server is not running; call start() first.")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def _latency(self) -> float:
        if not self.latency_jitter:
            return self.latency_seconds
        with self._lock:
            factor = self._jitter.lognormvariate(0.0, self.latency_jitter)
        return self.latency_seconds * factor

    def start(self) -> ReplayServer:
        """Bind the socket and serve in a background thread."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name=f"replay-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Replay server listening on %s (day %s)", self.url, self._day)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def day(self) -> int:
        """Return the snapshot day being served."""
        return self._day

    @property
    def as_of(self) -> datetime.date:
        """Return the date the snapshot reads as."""
        if self._as_of is not None:
            return self._as_of
        return datetime.datetime.fromtimestamp(self.clock(), datetime.UTC).date()

    @property
    def shift_days(self) -> int:
        """Return how many days every snapshot timestamp is moved by."""
        return (self.as_of - self._anchor).days - self._day

    def _build_state(self) -> DayState:
        return build_day_state(self._snapshot, self._day, self.shift_days)

    def set_day(self, day: int) -> None:
        """Serve another snapshot day."""
        self._day = day
        self._state = self._build_state()

    def set_as_of(self, as_of: datetime.date) -> None:
        """Make the snapshot read as of another date."""
        self._as_of = as_of
        self._state = self._build_state()

    def set_limit(self, resource: str, limit: int) -> None:
        """Change the request budget of one rate-limit resource."""
        self.limiter.set_limit(resource, limit)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the request log."""
        with self._lock:
            return list(self._log)

    def count(self, path_prefix: str) -> int:
        """Count logged requests whose path starts with a prefix."""
        with self._lock:
            return sum(1 for entry in self._log if entry.path.startswith(path_prefix))

    def reset_log(self) -> None:
        """Forget the logged requests."""
        with self._lock:
            self._log.clear()

    def enable_oauth(
        self,
        client_id: str,
        client_secret: str,
        *,
        access_seconds: int = ACCESS_TOKEN_SECONDS,
        refresh_seconds: int = REFRESH_TOKEN_SECONDS,
        device_interval: int = DEVICE_INTERVAL_SECONDS,
        auto_approve_after_polls: int | None = None,
        revoke_replaced_access: bool = True,
    ) -> OAuthApp:
        """Play an OAuth app: serve the token endpoints and check bearer tokens on API routes.

        Requests without a token stay anonymous (GitHub allows that outside ``/user``); a token
        the app did not issue, or one that expired or was replaced by a refresh, gets 401.
        """
        with self._lock:
            self.oauth = OAuthApp(
                client_id,
                client_secret,
                access_seconds=access_seconds,
                refresh_seconds=refresh_seconds,
                device_interval=device_interval,
                auto_approve_after_polls=auto_approve_after_polls,
                revoke_replaced_access=revoke_replaced_access,
            )
            return self.oauth

    def issue_tokens(
        self, *, access_expires_in: float | None = None, refresh_expires_in: float | None = None
    ) -> tuple[str, str]:
        """Issue an access and refresh token pair directly, as an earlier authorization did."""
        app = self._oauth_app()
        now = self.clock()
        with self._lock:
            return self._issue(app, now, access_expires_in, refresh_expires_in)

    def accept_token(self, token: str) -> None:
        """Accept a fixed token (a personal access token) on API routes in OAuth mode."""
        app = self._oauth_app()
        with self._lock:
            app.accepted.add(token)

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired, as if 8 hours had passed for them."""
        app = self._oauth_app()
        now = self.clock()
        with self._lock:
            for issued in app.access.values():
                issued.expires_at = now - 1

    def approve_device(self, user_code: str | None = None) -> int:
        """Approve pending device flows (one by user code, or all); return how many."""
        app = self._oauth_app()
        with self._lock:
            grants = [
                grant
                for grant in app.devices.values()
                if user_code is None or grant.user_code == user_code
            ]
            for grant in grants:
                grant.approved = True
            return len(grants)

    def token_valid(self, token: str) -> bool:
        """Tell whether an API route would accept a bearer token."""
        app = self.oauth
        if app is None:
            return True
        now = self.clock()
        with self._lock:
            if token in app.accepted:
                return True
            issued = app.access.get(token)
            return (
                issued is not None
                and not issued.used
                and (issued.expires_at is None or now < issued.expires_at)
            )

    def _oauth_app(self) -> OAuthApp:
        if self.oauth is None:
            raise RuntimeError("OAuth is not enabled; call enable_oauth() first.")
        return self.oauth

    @staticmethod
    def _issue(
        app: OAuthApp, now: float, access_in: float | None, refresh_in: float | None
    ) -> tuple[str, str]:
        access = "ghu_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "B")
        refresh = "ghr_" + secrets.token_urlsafe(57).replace("-", "A").replace("_", "B")
        access_for = app.access_seconds if access_in is None else access_in
        refresh_for = app.refresh_seconds if refresh_in is None else refresh_in
        app.access[access] = IssuedToken(now + access_for)
        app.refresh[refresh] = IssuedToken(now + refresh_for, pair=access)
        return access, refresh

    def inject(self, route: str, responses: list[Fault]) -> None:
        """Answer the next requests whose path matches ``route`` with these faults, in order."""
        with self._lock:
            self._faults.setdefault(route, collections.deque()).extend(responses)

    def delay_route(self, route: str, seconds: float) -> None:
        """Answer every request whose path matches ``route`` normally, ``seconds`` later."""
        with self._lock:
            self._route_delays[route] = seconds

    def flag_incomplete(self, route: str, count: int) -> None:
        """Mark the next ``count`` search answers on ``route`` ``incomplete_results: true``."""
        with self._lock:
            self._incomplete[route] = self._incomplete.get(route, 0) + count

    def _take_incomplete(self, path: str) -> bool:
        with self._lock:
            for route, left in self._incomplete.items():
                if left > 0 and fnmatch.fnmatchcase(path, route):
                    self._incomplete[route] = left - 1
                    return True
        return False

    def _route_delay(self, path: str) -> float:
        with self._lock:
            return sum(
                seconds
                for route, seconds in self._route_delays.items()
                if fnmatch.fnmatchcase(path, route)
            )

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for route, queue in self._faults.items():
                if queue and fnmatch.fnmatchcase(path, route):
                    return queue.popleft()
        return None

    def _serve(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            method=handler.command,
            path=unquote(parts.path),
            query_pairs=parse_qsl(parts.query, keep_blank_values=True),
            headers=handler.headers,
            request_id=self._request_id(),
            body=body,
        )
        resource = self._resource_for(request.path)
        fault = self._next_fault(request.path)
        if fault is not None:
            response = self._fault_response(fault, request, resource)
        else:
            response = self._route(request)
        budget = self._settle_budget(request, response, resource)
        # Logged on arrival: a request the client gave up on (timeout) still reached the server.
        self._record(request, 0 if response.drop else response.status)
        delay = self._latency() + response.delay_seconds + self._route_delay(request.path)
        if delay > 0:
            time.sleep(delay)
        logger.debug("%s %s -> %s", request.method, request.path, response.status)
        if response.drop:
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("Connection already closed while dropping %s", request.path)
            return
        self._write(handler, request, response, budget)

    def _settle_budget(
        self, request: Request, response: Response, resource: str | None
    ) -> BudgetState | None:
        """Charge the request to its resource and turn an exhausted budget into a 403."""
        if request.path.startswith("/login/"):
            return None  # the OAuth endpoints live outside the API's rate limits
        if resource is None:
            return self.limiter.peek("core")
        if not response.charge or response.status == 304:
            return self.limiter.peek(resource)
        allowed, budget = self.limiter.consume(resource)
        if not allowed:
            rejected = self._rate_limited(request)
            response.status, response.body, response.headers = (
                rejected.status,
                rejected.body,
                rejected.headers,
            )
        return budget

    def _rate_limited(self, request: Request) -> Response:
        moment = datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)
        message = (
            "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, "
            f"please include the request ID {request.request_id} and timestamp "
            f"{moment:%Y-%m-%d %H:%M:%S} UTC."
        )
        return json_response(403, {"message": message, "documentation_url": RATE_LIMIT_DOCS})

    def _write(
        self, handler: _Handler, request: Request, response: Response, budget: BudgetState | None
    ) -> None:
        headers = {
            "Date": email.utils.formatdate(self.clock(), usegmt=True),
            "Content-Type": JSON_TYPE,
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": API_VERSION,
            "X-GitHub-Request-Id": request.request_id,
        }
        if budget is not None:
            headers.update(budget.headers())
        headers.update(response.headers)
        if response.status == 304:
            headers.pop("Content-Type", None)
        else:
            headers["Content-Length"] = str(len(response.body))
        handler.send_response_only(response.status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if request.method != "HEAD" and response.status != 304:
            handler.wfile.write(response.body)

    def _record(self, request: Request, status: int) -> None:
        entry = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            has_authorization=request.has_authorization,
            status=status,
        )
        with self._lock:
            self._log.append(entry)

    def _request_id(self) -> str:
        number = next(self._ids)
        return (
            f"{os.getpid() & 0xFFFF:04X}:{self.port & 0xFFFF:04X}:{number:07X}:{number * 7919:08X}"
        )

    @staticmethod
    def _resource_for(path: str) -> str | None:
        if path == "/rate_limit":
            return None
        if path == "/search/code":
            return "code_search"
        if path.startswith("/search/"):
            return "search"
        return "core"

    def _fault_response(self, fault: Fault, request: Request, resource: str | None) -> Response:
        if fault.rate_limit is not None:
            return self._rate_limit_fault(fault, request, resource or "core")
        if isinstance(fault.body, dict | list):
            body = json_bytes(fault.body)
        elif isinstance(fault.body, str):
            body = fault.body.encode("utf-8")
        else:
            body = fault.body or b""
        return Response(
            fault.status,
            body,
            dict(fault.headers),
            charge=False,
            delay_seconds=fault.delay_seconds,
            drop=fault.drop,
        )

    def _rate_limit_fault(self, fault: Fault, request: Request, resource: str) -> Response:
        """Build a primary or secondary rate limit with GitHub's headers at serve time."""
        if fault.rate_limit == "primary":
            window = RATE_WINDOW_SECONDS.get(resource, 3600)
            reset_in = window if fault.reset_in_seconds is None else fault.reset_in_seconds
            self.limiter.exhaust(resource, int(self.clock() + reset_in))
            response = self._rate_limited(request)
        elif fault.rate_limit == "secondary":
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                "try again. If you reach out to GitHub Support for help, please include the "
                f"request ID {request.request_id}."
            )
            response = json_response(
                fault.status, {"message": message, "documentation_url": SECONDARY_LIMIT_DOCS}
            )
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        else:
            raise ValueError(f"unknown rate_limit fault {fault.rate_limit!r}")
        response.status = fault.status if fault.rate_limit == "secondary" else response.status
        response.headers.update(fault.headers)
        response.charge = False
        response.delay_seconds = fault.delay_seconds
        return response

    def _route(self, request: Request) -> Response:
        state = self._state
        path = request.path
        if request.method == "POST" and path == TOKEN_PATH and self.oauth is not None:
            return self._token_endpoint(request)
        if request.method == "POST" and path == DEVICE_CODE_PATH and self.oauth is not None:
            return self._device_code(request)
        if request.method not in ("GET", "HEAD"):
            return not_found()
        if self.oauth is not None and request.bearer and not self.token_valid(request.bearer):
            body = {"message": "Bad credentials", "documentation_url": GENERIC_DOCS}
            return json_response(401, {**body, "status": "401"}, charge=False)
        if path == "/search/repositories":
            return self._search_repositories(request, state)
        if path == "/search/code":
            return self._search_code(request, state)
        if path == "/rate_limit":
            return self._rate_limit()
        if path == "/user":
            return self._user(request)
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/readme)?", path)
        if match:
            full_name = f"{match.group(1)}/{match.group(2)}".lower()
            suffix = match.group(3) or ""
            if full_name in state.moved:
                return self._moved(state.moved[full_name], suffix)
            repo_id = state.names.get(full_name)
            return self._repo_or_readme(request, state, repo_id, suffix)
        match = re.fullmatch(r"/repositories/(\d+)(/readme)?", path)
        if match:
            suffix = match.group(2) or ""
            return self._repo_or_readme(request, state, int(match.group(1)), suffix)
        return not_found()

    def _repo_or_readme(
        self, request: Request, state: DayState, repo_id: int | None, suffix: str
    ) -> Response:
        served = state.repos.get(repo_id) if repo_id is not None else None
        if suffix == "/readme":
            if served is None or served.readme is None:
                return not_found(README_DOCS)
            return self._readme(request, served.repo, *served.readme)
        if served is None:
            return not_found(REPO_DOCS)
        return conditional(request, json_bytes(served.repo), {"Content-Type": JSON_TYPE})

    def _moved(self, repo_id: int, suffix: str) -> Response:
        location = f"{self.url}/repositories/{repo_id}{suffix}"
        body = {"message": "Moved Permanently", "url": location, "documentation_url": REDIRECT_DOCS}
        response = json_response(301, body)
        response.headers["Location"] = location
        return response

    def _readme(
        self, request: Request, repo: Mapping[str, Any], path: str, content: bytes
    ) -> Response:
        accept = request.headers.get("Accept", "")
        if any(marker in accept for marker in RAW_ACCEPT_MARKERS):
            headers = {"Content-Type": RAW_TYPE, "X-GitHub-Media-Type": "github.v3; param=raw"}
            return conditional(request, content, headers)
        full_name, branch = repo["full_name"], repo.get("default_branch", "main")
        sha = hashlib.sha1(b"blob %d\x00" % len(content) + content, usedforsecurity=False)
        blob_sha = sha.hexdigest()
        api = f"{API_ROOT}/repos/{full_name}"
        html = f"https://github.com/{full_name}/blob/{branch}/{path}"
        body = {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": blob_sha,
            "size": len(content),
            "url": f"{api}/contents/{path}?ref={branch}",
            "html_url": html,
            "git_url": f"{api}/git/blobs/{blob_sha}",
            "download_url": f"https://raw.githubusercontent.com/{full_name}/{branch}/{path}",
            "type": "file",
            "content": wrap_base64(content),
            "encoding": "base64",
            "_links": {
                "self": f"{api}/contents/{path}?ref={branch}",
                "git": f"{api}/git/blobs/{blob_sha}",
                "html": html,
            },
        }
        return conditional(request, json_bytes(body), {"Content-Type": JSON_TYPE})

    def _search_repositories(self, request: Request, state: DayState) -> Response:
        params = request.query
        try:
            query = parse_query(params.get("q"), REPO_QUALIFIERS)
            keep = repository_filter(query)
        except QueryError as error:
            return validation_failed(str(error), error.code)
        matches = [served.repo for served in state.ordered() if keep(served.repo)]
        sort_key = {"forks": "forks_count", "updated": "updated_at"}.get(
            params.get("sort", ""), "stargazers_count"
        )
        descending = params.get("order", "desc").lower() != "asc"
        matches.sort(key=lambda repo: repo["id"])
        matches.sort(key=lambda repo: repo[sort_key], reverse=descending)
        return self._page(request, matches, lambda repo: {**repo, "score": 1.0})

    def _search_code(self, request: Request, state: DayState) -> Response:
        if self.require_token_for_code_search and not request.has_authorization:
            body = {"message": "Requires authentication", "documentation_url": CODE_SEARCH_DOCS}
            return json_response(401, body, charge=False)
        try:
            query = parse_query(request.query.get("q"), CODE_QUALIFIERS)
            keep = code_filter(query)
        except QueryError as error:
            return validation_failed(str(error), error.code)
        hits = [
            (served.repo, path)
            for served in state.ordered()
            for path in sorted(served.files)
            if keep(served.repo, path)
        ]
        return self._page(request, hits, lambda hit: code_item(*hit))

    def _page(
        self, request: Request, matches: list[Any], render: Callable[[Any], dict[str, Any]]
    ) -> Response:
        """Serve one page of search results with GitHub's cap and ``Link`` header."""
        params = request.query
        per_page = min(max(int_param(params.get("per_page"), DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        page = max(int_param(params.get("page"), 1), 1)
        start = (page - 1) * per_page
        if start >= SEARCH_RESULT_CAP:
            body = {
                "message": "Only the first 1000 search results are available",
                "documentation_url": SEARCH_DOCS,
            }
            return json_response(422, body)
        end = min(start + per_page, SEARCH_RESULT_CAP)
        body = {
            "total_count": len(matches),
            "incomplete_results": self._take_incomplete(request.path),
            "items": [render(item) for item in matches[start:end]],
        }
        response = json_response(200, body)
        link = self._link_header(request, page, per_page, len(matches))
        if link:
            response.headers["Link"] = link
        response.headers["Cache-Control"] = "no-cache"
        return response

    def _link_header(self, request: Request, page: int, per_page: int, total: int) -> str:
        reachable = min(total, SEARCH_RESULT_CAP)
        last = max(1, math.ceil(reachable / per_page))
        pairs = [(key, value) for key, value in request.query_pairs if key != "page"]

        def url(number: int) -> str:
            return f"{self.url}{request.path}?{urlencode([*pairs, ('page', str(number))])}"

        links = []
        if page > 1:
            links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return ", ".join(links)

    def _rate_limit(self) -> Response:
        resources = {name: self.limiter.peek(name).as_json() for name in self.limiter.resources()}
        body = {"resources": resources, "rate": resources["core"]}
        return json_response(200, body, charge=False)

    def _token_endpoint(self, request: Request) -> Response:
        """Play ``POST /login/oauth/access_token``: refresh, device and code grants."""
        app = self._oauth_app()
        form = request.form
        grant = form.get("grant_type", "")
        now = self.clock()
        with self._lock:
            if form.get("client_id") != app.client_id:
                return _oauth_answer(request, oauth_error_body("incorrect_client_credentials"))
            if grant == "refresh_token":
                if form.get("client_secret") != app.client_secret:
                    return _oauth_answer(request, oauth_error_body("incorrect_client_credentials"))
                fields = self._refresh_grant(app, form.get("refresh_token", ""), now)
            elif grant == DEVICE_GRANT_TYPE:
                fields = self._device_grant(app, form.get("device_code", ""), now)
            elif form.get("code"):
                fields = oauth_error_body("bad_verification_code")
            else:
                fields = oauth_error_body("unsupported_grant_type")
        return _oauth_answer(request, fields)

    def _refresh_grant(self, app: OAuthApp, refresh_token: str, now: float) -> dict[str, Any]:
        issued = app.refresh.get(refresh_token)
        if issued is None or issued.used or (issued.expires_at and now >= issued.expires_at):
            return oauth_error_body("bad_refresh_token")
        issued.used = True  # refresh tokens are single use
        replaced = app.access.get(issued.pair or "")
        if replaced is not None and app.revoke_replaced_access:
            replaced.used = True  # the replaced access token stops working
        return self._token_fields(app, now)

    def _token_fields(self, app: OAuthApp, now: float) -> dict[str, Any]:
        access, refresh = self._issue(app, now, None, None)
        return {
            "access_token": access,
            "expires_in": app.access_seconds,
            "refresh_token": refresh,
            "refresh_token_expires_in": app.refresh_seconds,
            "scope": "",
            "token_type": "bearer",
        }

    def _device_grant(self, app: OAuthApp, device_code: str, now: float) -> dict[str, Any]:
        grant = app.devices.get(device_code)
        if grant is None:
            return oauth_error_body("incorrect_device_code")
        if now >= grant.expires_at:
            return oauth_error_body("expired_token")
        too_soon = grant.last_poll is not None and now - grant.last_poll < grant.interval
        grant.last_poll = now
        if too_soon:
            grant.interval += DEVICE_SLOW_DOWN_SECONDS
            return {**oauth_error_body("slow_down"), "interval": grant.interval}
        if not grant.approved:
            grant.pending_polls += 1
            limit = app.auto_approve_after_polls
            if limit is None or grant.pending_polls <= limit:
                return oauth_error_body("authorization_pending")
        del app.devices[device_code]  # a device code is exchanged once
        return self._token_fields(app, now)

    def _device_code(self, request: Request) -> Response:
        """Play ``POST /login/device/code``: start a device flow."""
        app = self._oauth_app()
        form = request.form
        if form.get("client_id") != app.client_id:
            return _oauth_answer(request, oauth_error_body("incorrect_client_credentials"))
        device_code = secrets.token_hex(20)
        letters = "BCDFGHJKLMNPQRSTVWXZ"
        user_code = "-".join("".join(secrets.choice(letters) for _ in range(4)) for _ in range(2))
        with self._lock:
            app.devices[device_code] = DeviceGrant(
                device_code,
                user_code,
                self.clock() + DEVICE_CODE_SECONDS,
                app.device_interval,
            )
        fields = {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": f"{self.url}/login/device",
            "expires_in": DEVICE_CODE_SECONDS,
            "interval": app.device_interval,
        }
        return _oauth_answer(request, fields)

    def _user(self, request: Request) -> Response:
        if not request.has_authorization:
            body = {"message": "Requires authentication", "documentation_url": USER_DOCS}
            return json_response(401, body, charge=False)
        return json_response(200, REPLAY_USER)


def _oauth_answer(request: Request, fields: Mapping[str, Any]) -> Response:
    """Answer a token-endpoint call: JSON when asked for, else form-encoded (HTTP 200 always)."""
    if "application/json" in (request.headers.get("Accept") or ""):
        return json_response(200, dict(fields), charge=False)
    body = urlencode({key: str(value) for key, value in fields.items()}).encode("ascii")
    return Response(
        200, body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, False
    )


def conditional(request: Request, body: bytes, headers: dict[str, str]) -> Response:
    """Attach a strong ETag and answer 304 when ``If-None-Match`` already names it."""
    tag = hashlib.sha256(body).hexdigest()
    headers = {**headers, "ETag": f'"{tag}"'}
    wanted = request.headers.get("If-None-Match", "")
    candidates = {item.strip().removeprefix("W/").strip('"') for item in wanted.split(",")}
    if tag in candidates or "*" in candidates:
        return Response(304, b"", headers)
    return Response(200, body, headers)


def wrap_base64(content: bytes) -> str:
    """Encode bytes as base64 with a newline after every 60 characters, as GitHub does."""
    encoded = base64.b64encode(content).decode("ascii")
    lines = [
        encoded[i : i + BASE64_LINE_LENGTH] for i in range(0, len(encoded), BASE64_LINE_LENGTH)
    ]
    return "".join(line + "\n" for line in lines)


def int_param(value: str | None, default: int) -> int:
    """Parse an integer query parameter, falling back to a default when absent or invalid."""
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def minimal_repository(repo: Mapping[str, Any]) -> dict[str, Any]:
    """Return the short repository object that code search embeds in each item."""
    minimal: dict[str, Any] = {}
    for key, value in repo.items():
        if key == MINIMAL_REPO_SKIP_FROM:
            break
        minimal[key] = value
    return minimal


def code_item(repo: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Build one code search item for a file in a repository."""
    identity = f"{repo['id']}:{path}".encode()
    blob_sha = hashlib.sha1(b"file " + identity, usedforsecurity=False).hexdigest()
    ref = hashlib.sha1(b"ref " + identity, usedforsecurity=False).hexdigest()
    api = f"{API_ROOT}/repositories/{repo['id']}"
    return {
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": blob_sha,
        "url": f"{api}/contents/{path}?ref={ref}",
        "git_url": f"{api}/git/blobs/{blob_sha}",
        "html_url": f"https://github.com/{repo['full_name']}/blob/{ref}/{path}",
        "repository": minimal_repository(repo),
        "score": 1.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the replay server until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="Serve the GitHub API replay of a snapshot.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--snapshot", help="snapshot file (default: the bundled snapshot)")
    parser.add_argument("--as-of", type=datetime.date.fromisoformat, help="date to read as")
    parser.add_argument("--day", type=int, default=0, help="snapshot day to serve")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per response")
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="log-normal sigma of the latency (0: fixed)"
    )
    parser.add_argument("--port-file", type=Path, help="write the bound port to this file")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback host")
    parser.add_argument("--verbose", action="store_true", help="log every request at DEBUG")
    args = parser.parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        parser.error(f"refusing to bind non-loopback host {args.host!r} without --allow-remote")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    server = ReplayServer(
        args.snapshot, as_of=args.as_of, day=args.day, host=args.host, port=args.port
    )
    server.latency_seconds = args.latency
    server.latency_jitter = args.jitter
    server.start()
    try:
        if args.port_file:
            partial = args.port_file.with_name(args.port_file.name + ".partial")
            partial.write_text(f"{server.port}\n", encoding="utf-8")
            os.replace(partial, args.port_file)
        print(f"replay server listening on {server.url}", flush=True)
        while not stopping.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
