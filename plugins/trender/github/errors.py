"""Errors raised by the GitHub REST client and the single function that classifies responses."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

# Token prefixes GitHub hands out (classic PAT, OAuth, user-to-server, server-to-server, refresh,
# fine-grained PAT); anything shaped like one is masked before it can reach an error text.
_TOKEN_PATTERN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9_]{6,}|github_pat_[A-Za-z0-9_]{6,})")
_TOKEN_MASK = "<redacted token>"

# GitHub answers a page beyond the reachable window with this 422 wording.
_SEARCH_CAP_PATTERN = re.compile(r"only the first \d+ search results are available", re.IGNORECASE)

# Wordings of the secondary ("abuse") limit: 2018 recordings say "abuse detection mechanism",
# 2021 and later say "secondary rate limit".
_SECONDARY_LIMIT_PHRASES = ("secondary rate limit", "abuse detection")

# Primary-limit wording used when no x-ratelimit-remaining header is present.
_PRIMARY_LIMIT_PHRASE = "rate limit exceeded"

# Error texts quote at most this much of a message GitHub sent, so a huge body never floods logs.
MAX_MESSAGE_CHARS = 300

_HTML_TITLE = re.compile(r"<(title|h1)[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def redact(text: str) -> str:
    """Mask anything that looks like a GitHub token in ``text``."""
    return _TOKEN_PATTERN.sub(_TOKEN_MASK, text)


def _clean_path(path: str) -> str:
    """Return ``path`` without a query string or fragment (they may carry secrets)."""
    return path.split("?", 1)[0].split("#", 1)[0]


def _reason(status: int) -> str:
    """Return the standard reason phrase of an HTTP status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Status"


def _rebuild_error(cls: type[GitHubError], state: dict[str, Any]) -> GitHubError:
    """Recreate a pickled error without calling its constructor."""
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.describe())
    return error


class GitHubError(Exception):
    """Base class of every failure talking to the GitHub REST API."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "GET",
        path: str = "",
        request_id: str | None = None,
        documentation_url: str | None = None,
    ) -> None:
        """Store the failure details; ``path`` loses any query string."""
        self.message = redact(message or "")[:MAX_MESSAGE_CHARS]
        self.status = status
        self.method = method.upper()
        self.path = _clean_path(path)
        self.request_id = request_id
        self.documentation_url = documentation_url
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return the one-line description used by ``str()``."""
        target = f"GitHub API {self.method} {self.path or '/'}"
        if self.status is None:
            text = f"{target} failed: {self.message}"
        else:
            reason = _reason(self.status)
            text = f"{target} returned {self.status} {reason}: {self.message or reason}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __str__(self) -> str:
        """Return the one-line description."""
        return self.describe()

    def __repr__(self) -> str:
        """Return a debugging representation that holds no credentials."""
        return (
            f"{type(self).__name__}(status={self.status!r}, method={self.method!r}, "
            f"path={self.path!r}, request_id={self.request_id!r}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Support pickling although the constructor takes keyword arguments."""
        return (_rebuild_error, (type(self), self.__dict__.copy()))


class GitHubNotFound(GitHubError):
    """404: the resource does not exist or is invisible to the token."""


class GitHubAuthError(GitHubError):
    """401: bad credentials, a required OTP code or a missing token."""


class GitHubPermissionError(GitHubError):
    """403 that is not a rate limit, such as missing push access or a missing User-Agent."""


class GitHubRateLimitError(GitHubError):
    """403 or 429 caused by the primary or the secondary rate limit."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        retry_after: float | None = None,
        reset_at: float | None = None,
        resource: str | None = None,
        **details: Any,
    ) -> None:
        """Store the limit kind (``"primary"`` or ``"secondary"``) and when it lifts."""
        self.kind = kind
        self.retry_after = retry_after
        self.reset_at = reset_at
        self.resource = resource
        super().__init__(message, **details)


class GitHubServerError(GitHubError):
    """5xx answer, including HTML error pages; worth retrying."""


class GitHubValidationError(GitHubError):
    """422: GitHub rejected the request parameters."""

    def __init__(self, message: str, *, errors: list[dict] | None = None, **details: Any) -> None:
        """Store the ``errors`` entries GitHub returned."""
        self.errors = list(errors or [])
        super().__init__(message, **details)

    @property
    def is_search_cap(self) -> bool:
        """Tell whether GitHub refused a search page beyond the first 1000 results."""
        texts = [self.message] + [str(entry.get("message", "")) for entry in self.errors]
        return any(_SEARCH_CAP_PATTERN.search(text) for text in texts)


class GitHubTransportError(GitHubError):
    """No usable HTTP answer: timeout, refused or dropped connection."""


class GitHubResponseError(GitHubError):
    """Successful status whose body is not the JSON that was expected."""


class GitHubRateLimitExhaustedError(GitHubRateLimitError):
    """A rate limit outlasted the retries or the total wait the policy allows."""


class GitHubCredentialError(GitHubError):
    """The configured credential cannot be used; an operator must act, retrying cannot help.

    Raised by token sources before a request is sent, so the client neither retries nor
    replays it. The message is kept whole: it says what to do.
    """

    def __init__(self, message: str, *, credential: str = "", **details: Any) -> None:
        """Store the message and the credential it is about."""
        self.credential = credential
        super().__init__(message, **details)
        self.message = redact(message)
        Exception.__init__(self, self.describe())

    def describe(self) -> str:
        """Return the message itself: it already names the credential and the fix."""
        return self.message


class GitHubCredentialUndecryptableError(GitHubCredentialError):
    """The stored credential cannot be decrypted with any configured key."""


class GitHubCredentialRejectedError(GitHubCredentialError):
    """The token endpoint refused the stored refresh token or the client credentials."""

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        """Store the OAuth error code."""
        self.code = code
        super().__init__(message, **details)


class GitHubTokenEndpointError(GitHubCredentialError):
    """The token endpoint could not be reached or answered something unreadable."""


class GitHubOAuthError(GitHubError):
    """The OAuth token endpoint answered (with HTTP 200) an ``error`` code."""

    def __init__(self, message: str, *, code: str, description: str | None = None, **details: Any):
        """Store the OAuth error code and its description."""
        self.code = code
        self.description = description
        super().__init__(message, **details)

    @property
    def pending(self) -> bool:
        """Tell whether the code means "ask again later" during a device flow."""
        return self.code in OAUTH_PENDING_CODES


RETRIABLE = (GitHubServerError, GitHubTransportError, GitHubRateLimitError, GitHubResponseError)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up case-insensitively."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _as_float(value: str | None) -> float | None:
    """Parse a numeric header, returning None when absent or garbled."""
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse ``Retry-After`` given either as seconds or as an HTTP date."""
    if value is None:
        return None
    seconds = _as_float(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _parse_body(body: bytes | str | None) -> Any:
    """Return the decoded JSON body, or None when it is empty or not JSON."""
    if body is None or len(body) == 0:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _summarise_non_json(body: bytes | str | None, content_type: str | None) -> str:
    """Describe a body that is not JSON without quoting all of it."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    match = _HTML_TITLE.search(text)
    if match:
        title = _SPACE.sub(" ", html.unescape(_TAG.sub("", match.group(2)))).strip()
        if title:
            return f"HTML page: {title}"
    return f"non-JSON body ({len(body)} bytes, content type {content_type or 'unknown'})"


def _message_of(payload: Any, body: bytes | str | None, content_type: str | None) -> str:
    """Pick the human-readable message from an error body of any shape."""
    if isinstance(payload, dict):
        for key in ("message", "error"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
        return ""
    return _summarise_non_json(body, content_type)


def classify_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | None,
    *,
    method: str,
    path: str,
) -> GitHubError | None:
    """Turn an HTTP answer into the matching error, or None when it is not an error.

    2xx, 304 and redirects (301, 302, 303, 307, 308) are not errors: the client follows
    redirects itself and treats 304 as "not modified".
    """
    if status < 400:
        return None
    payload = _parse_body(body)
    content_type = header(headers, "Content-Type")
    message = _message_of(payload, body, content_type) or _reason(status)
    documentation_url = None
    if isinstance(payload, dict) and isinstance(payload.get("documentation_url"), str):
        documentation_url = payload["documentation_url"]
    details: dict[str, Any] = {
        "status": status,
        "method": method,
        "path": path,
        "request_id": header(headers, "X-GitHub-Request-Id"),
        "documentation_url": documentation_url,
    }
    if status in (403, 429):
        limited = _rate_limit_error(status, headers, message, details)
        if limited is not None:
            return limited
        return GitHubPermissionError(message, **details)
    if status == 401:
        return GitHubAuthError(message, **details)
    if status == 404:
        return GitHubNotFound(message, **details)
    if status == 422:
        entries = payload.get("errors") if isinstance(payload, dict) else None
        errors = [entry for entry in entries if isinstance(entry, dict)] if entries else []
        return GitHubValidationError(message, errors=errors, **details)
    if status >= 500:
        return GitHubServerError(message, **details)
    return GitHubError(message, **details)


def _rate_limit_error(
    status: int, headers: Mapping[str, str], message: str, details: dict[str, Any]
) -> GitHubRateLimitError | None:
    """Recognise a primary or secondary rate limit, or return None for a plain 403."""
    remaining = header(headers, "X-RateLimit-Remaining")
    retry_after = _retry_after_seconds(header(headers, "Retry-After"))
    reset_at = _as_float(header(headers, "X-RateLimit-Reset"))
    resource = header(headers, "X-RateLimit-Resource")
    lowered = message.lower()
    if remaining is not None and remaining.strip() == "0":
        kind = "primary"
    elif retry_after is not None or any(p in lowered for p in _SECONDARY_LIMIT_PHRASES):
        kind = "secondary"
    elif _PRIMARY_LIMIT_PHRASE in lowered:
        kind = "primary"
    elif status == 429:
        kind = "secondary"
    else:
        return None
    return GitHubRateLimitError(
        message,
        kind=kind,
        retry_after=retry_after,
        reset_at=reset_at,
        resource=resource,
        **details,
    )


def oauth_error(body: Mapping[str, Any] | bytes | str | None) -> str | None:
    """Return the OAuth ``error`` code of a token-endpoint answer, or None for success.

    The token endpoint reports failures with HTTP 200 and an ``error`` key, either as JSON or,
    without ``Accept: application/json``, form-encoded.
    """
    code = oauth_fields(body).get("error")
    return code if isinstance(code, str) and code else None


# Device flow answers that mean "poll again"; every other OAuth error code ends the attempt.
OAUTH_PENDING_CODES = frozenset({"authorization_pending", "slow_down"})


def oauth_fields(body: Mapping[str, Any] | bytes | str | None) -> dict[str, Any]:
    """Decode a token-endpoint answer given as JSON or form-encoded text."""
    if body is None:
        return {}
    if isinstance(body, Mapping):
        return dict(body)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    parsed = _parse_body(text)
    if isinstance(parsed, dict):
        return parsed
    return {key: values[0] for key, values in parse_qs(text.strip()).items()}


def oauth_failure(
    body: Mapping[str, Any] | bytes | str | None, *, path: str = "/login/oauth/access_token"
) -> GitHubOAuthError | None:
    """Return the error a token-endpoint answer reports, or None for a success."""
    fields = oauth_fields(body)
    code = oauth_error(fields)
    if code is None:
        return None
    description = fields.get("error_description")
    description = description if isinstance(description, str) and description else None
    return GitHubOAuthError(
        f"{code}: {description}" if description else code,
        code=code,
        description=description,
        method="POST",
        path=path,
    )
