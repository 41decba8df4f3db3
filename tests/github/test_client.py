"""Tests of the GitHub REST client against a fake transport (and one real local server)."""

from __future__ import annotations

import base64
import json
import logging
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests

from tests.github.fakes import FakeTransport, Reply, json_reply, path_of, query_of, session_with
from trender.github.client import (
    DEFAULT_USER_AGENT,
    GitHubClient,
    Readme,
    StaticToken,
    WaitForResetPolicy,
    resource_for_path,
)
from trender.github.errors import (
    RETRIABLE,
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubPermissionError,
    GitHubRateLimitError,
    GitHubResponseError,
    GitHubServerError,
    GitHubTransportError,
    GitHubValidationError,
    classify_response,
)

BASE = "https://api.example.test"
TOKEN = "tok-123"
QUERY = "language:Python stars:>10"
ENCODED_QUERY = "q=language%3APython+stars%3A%3E10"
SEARCH = f"{BASE}/search/repositories"
CAP_MESSAGE = "Only the first 1000 search results are available"


class RefreshingToken:
    """Token source that hands out the next token after each 401."""

    def __init__(self, tokens: list[str], *, can_refresh: bool = True) -> None:
        """Start with ``tokens[0]``; refreshing moves to the next one."""
        self.tokens = tokens
        self.can_refresh = can_refresh
        self.unauthorized_calls = 0

    def token(self) -> str | None:
        """Return the current token."""
        return self.tokens[0]

    def on_unauthorized(self) -> bool:
        """Switch to the next token if there is one."""
        self.unauthorized_calls += 1
        if self.can_refresh and len(self.tokens) > 1:
            self.tokens.pop(0)
            return True
        return False


class RecordingPolicy:
    """Rate-limit policy that records its calls and waits a fixed time."""

    def __init__(self, wait: float | None) -> None:
        """Answer every ``wait_for`` with ``wait``."""
        self.wait = wait
        self.before: list[str] = []
        self.after: list[tuple[str, int]] = []
        self.asked: list[tuple[str, int]] = []

    def before_request(self, resource: str) -> None:
        """Record the resource."""
        self.before.append(resource)

    def after_response(self, resource: str, headers: Any, status: int) -> None:
        """Record the resource and status."""
        self.after.append((resource, status))

    def wait_for(self, error: GitHubRateLimitError, attempt: int) -> float | None:
        """Record the question and return the fixed wait."""
        self.asked.append((error.kind, attempt))
        return self.wait


@pytest.fixture
def transport() -> FakeTransport:
    """Return an empty fake transport; tests queue replies on it."""
    return FakeTransport()


@pytest.fixture
def sleeps() -> list[float]:
    """Collect the client's sleeps instead of sleeping."""
    return []


@pytest.fixture
def make_client(
    transport: FakeTransport, sleeps: list[float]
) -> Iterator[Callable[..., GitHubClient]]:
    """Build clients wired to the fake transport, closing them afterwards."""
    clients: list[GitHubClient] = []

    def build(**overrides: Any) -> GitHubClient:
        options: dict[str, Any] = {
            "token_source": StaticToken(TOKEN),
            "session": session_with(transport),
            "sleep": sleeps.append,
        }
        options.update(overrides)
        client = GitHubClient(BASE, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., GitHubClient]) -> GitHubClient:
    """Return a client with a static token and default options."""
    return make_client()


def search_page(
    count: int,
    *,
    start: int = 0,
    total: int = 5000,
    next_page: bool = True,
    incomplete: bool | None = False,
) -> Reply:
    """Build one search page of ``count`` items numbered from ``start``."""
    body: dict[str, Any] = {
        "total_count": total,
        "items": [{"id": start + i} for i in range(count)],
    }
    if incomplete is not None:
        body["incomplete_results"] = incomplete
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if next_page:
        headers["Link"] = (
            f'<{BASE}/search/repositories?q=x&page=2>; rel="next", '
            f'<{BASE}/search/repositories?q=x&page=34>; rel="last"'
        )
    return Reply(200, body, headers)


def readme_payload(text: str, path: str = "README.md") -> dict[str, Any]:
    """Build a contents-API README object with GitHub's 60-column base64 wrapping."""
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
    return {
        "type": "file",
        "encoding": "base64",
        "name": path,
        "path": path,
        "size": len(text.encode("utf-8")),
        "sha": "0123abcd",
        "content": wrapped,
    }


def repo_search_url(page: int, per_page: int = 100) -> str:
    """Return the URL the client requests for a repository search page."""
    query = f"{ENCODED_QUERY}&sort=stars&order=desc&per_page={per_page}&page={page}"
    return f"{BASE}/search/repositories?{query}"


# -- headers ------------------------------------------------------------------------------------


def test_sends_github_headers_and_bearer_token(client: GitHubClient, transport: FakeTransport):
    transport.add(json_reply({"resources": {}}))

    assert client.rate_limit() == {"resources": {}}

    (sent,) = transport.requests
    assert sent.url == f"{BASE}/rate_limit"
    assert sent.headers["Accept"] == "application/vnd.github+json"
    assert sent.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert sent.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"


def test_default_user_agent_names_trender():
    assert DEFAULT_USER_AGENT == "trender/0.1.0 (+https://github.com/trender)"


def test_anonymous_client_sends_no_authorization(make_client, transport: FakeTransport):
    transport.add(json_reply({"id": 1}))

    make_client(token_source=StaticToken(None)).get_repository("octo/hello")

    assert "Authorization" not in transport.requests[0].headers


def test_static_token_repr_hides_token():
    assert repr(StaticToken("ghp_TESTSECRET123")) == "StaticToken(<set>)"
    assert repr(StaticToken(None)) == "StaticToken(None)"


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/search/code", "code_search"),
        ("/search/code?q=x", "code_search"),
        ("/search/repositories", "search"),
        ("/search/users", "search"),
        ("/repos/a/b/readme", "core"),
        ("/rate_limit", "core"),
    ],
    ids=["code", "code-with-query", "repositories", "users", "readme", "rate-limit"],
)
def test_resource_for_path(path: str, resource: str):
    assert resource_for_path(path) == resource


# -- pagination ---------------------------------------------------------------------------------


def test_pagination_stops_at_limit_and_trims(client: GitHubClient, transport: FakeTransport):
    transport.add(search_page(100), search_page(100, start=100))

    result = client.search_repositories(QUERY, limit=150)

    assert transport.urls == [repo_search_url(1), repo_search_url(2)]
    assert [item["id"] for item in result.items] == list(range(150))
    assert [(p.page, p.item_count) for p in result.pages] == [(1, 100), (2, 100)]
    assert result.total_count == 5000
    assert result.query == QUERY


def test_per_page_shrinks_to_limit(client: GitHubClient, transport: FakeTransport):
    transport.add(search_page(5))

    result = client.search_repositories(QUERY, limit=5)

    assert transport.urls == [repo_search_url(1, per_page=5)]
    assert len(result.items) == 5


def test_pagination_follows_the_link_header_over_the_page_size(
    client: GitHubClient, transport: FakeTransport
):
    # Code search returns short pages (29 of 30) that still link to more results.
    transport.add(
        search_page(100), search_page(40, start=100), search_page(20, start=140, next_page=False)
    )

    result = client.search_repositories(QUERY, limit=500)

    assert transport.urls == [repo_search_url(1), repo_search_url(2), repo_search_url(3)]
    assert len(result.items) == 160


def test_pagination_stops_at_a_short_last_page(client: GitHubClient, transport: FakeTransport):
    transport.add(search_page(100), search_page(40, start=100, next_page=False))

    result = client.search_repositories(QUERY, limit=500)

    assert transport.urls == [repo_search_url(1), repo_search_url(2)]
    assert len(result.items) == 140


def test_pagination_stops_at_an_empty_page(client: GitHubClient, transport: FakeTransport):
    transport.add(search_page(100), search_page(0, start=100))

    result = client.search_repositories(QUERY, limit=500)

    assert transport.urls == [repo_search_url(1), repo_search_url(2)]
    assert len(result.items) == 100


@pytest.mark.parametrize(
    "link",
    [
        None,
        f'<{SEARCH}?q=x&page=1>; rel="prev", <{SEARCH}?q=x&page=1>; rel="first"',
        f'<{SEARCH}?q=x&page=1>; rel="first", <{SEARCH}?q=x&page=3>; rel="last"',
    ],
    ids=["no-link-header", "prev-and-first-only", "first-and-last-only"],
)
def test_pagination_stops_without_next_link(
    client: GitHubClient, transport: FakeTransport, link: str | None
):
    reply = search_page(100, next_page=False)
    if link:
        reply.headers["Link"] = link
    transport.add(reply)

    result = client.search_repositories(QUERY, limit=500)

    assert transport.urls == [repo_search_url(1)]
    assert len(result.items) == 100


def test_pagination_follows_next_link_in_any_order(client: GitHubClient, transport: FakeTransport):
    reply = search_page(100, next_page=False)
    reply.headers["Link"] = (
        f'<{BASE}/search/repositories?q=x&page=1>; rel="first", '
        f'<{BASE}/search/repositories?q=x&page=1>; rel="prev", '
        f'<{BASE}/search/repositories?q=x&page=34>; rel="last", '
        f'<{BASE}/search/repositories?q=x&page=3>; rel="next"'
    )
    transport.add(reply, search_page(100, start=100, next_page=False))

    result = client.search_repositories(QUERY, limit=500)

    assert transport.urls == [repo_search_url(1), repo_search_url(2)]
    assert len(result.items) == 200


@pytest.mark.parametrize(
    ("per_page", "last_page"),
    [(100, 10), (30, 34), (1, 1000)],
    ids=["per-page-100-stops-at-10", "per-page-30-stops-at-34", "per-page-1-stops-at-1000"],
)
def test_pagination_never_requests_past_result_cap(
    make_client, per_page: int, last_page: int, sleeps: list[float]
):
    def full_page(request: requests.PreparedRequest) -> Reply:
        page = int(query_of(request.url)["page"])
        return search_page(per_page, start=(page - 1) * per_page, total=180_250)

    transport = FakeTransport(handler=full_page)
    client = make_client(session=session_with(transport))

    result = client.search_repositories(QUERY, limit=5000, per_page=per_page)

    pages = [int(query_of(url)["page"]) for url in transport.urls]
    assert pages == list(range(1, last_page + 1))
    assert transport.urls[-1] == repo_search_url(last_page, per_page=per_page)
    assert len(result.items) == last_page * per_page
    assert sleeps == []


def test_search_cap_422_ends_pagination_quietly(
    client: GitHubClient, transport: FakeTransport, caplog: pytest.LogCaptureFixture
):
    cap = json_reply(
        {"message": CAP_MESSAGE, "documentation_url": "https://docs.github.com/v3/search/"},
        status=422,
    )
    transport.add(search_page(100), cap)
    caplog.set_level(logging.INFO, logger="trender.github.client")

    result = client.search_repositories(QUERY, limit=300)

    assert transport.urls == [repo_search_url(1), repo_search_url(2)]
    assert len(result.items) == 100
    assert [p.page for p in result.pages] == [1]
    assert (
        "search /search/repositories stopped before page 2: GitHub serves only the first 1000"
        " results"
    ) in [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_other_422_raises_validation_error(client: GitHubClient, transport: FakeTransport):
    entry = {
        "message": "The listed users and repositories cannot be searched either because the"
        " resources do not exist or you do not have permission to view them.",
        "resource": "Search",
        "field": "q",
        "code": "invalid",
    }
    transport.add(json_reply({"message": "Validation Failed", "errors": [entry]}, 422))

    with pytest.raises(GitHubValidationError, match="422 Unprocessable Entity: Validation Failed"):
        client.search_repositories("repo:nobody/nothing", limit=10)

    assert len(transport.requests) == 1


def test_validation_error_exposes_entries_and_cap_flag():
    error = classify_response(
        422,
        {},
        json.dumps({"message": "Validation Failed", "errors": [{"message": CAP_MESSAGE}]}),
        method="GET",
        path="/search/repositories",
    )

    assert isinstance(error, GitHubValidationError)
    assert error.errors == [{"message": CAP_MESSAGE}]
    assert error.is_search_cap is True


@pytest.mark.parametrize(
    ("flags", "expected"),
    [((None, None), False), ((True, False), True), ((False, True), True), ((False, False), False)],
    ids=["missing-defaults-false", "first-page-true", "last-page-true", "all-false"],
)
def test_incomplete_results_flag(
    client: GitHubClient, transport: FakeTransport, flags: tuple, expected: bool
):
    transport.add(
        search_page(2, incomplete=flags[0]),
        search_page(1, start=2, incomplete=flags[1], next_page=False),
    )

    result = client.search_repositories(QUERY, limit=4, per_page=2)

    assert result.incomplete_results is expected
    assert [p.incomplete_results for p in result.pages] == [bool(f) for f in flags]


def test_search_code_sends_no_sort_and_counts_code_search(
    client: GitHubClient, transport: FakeTransport
):
    transport.add(search_page(2), search_page(1, start=2, next_page=False))

    result = client.search_code("filename:render.yaml path:/", limit=10, per_page=2)

    assert transport.urls == [
        f"{BASE}/search/code?q=filename%3Arender.yaml+path%3A%2F&per_page=2&page=1",
        f"{BASE}/search/code?q=filename%3Arender.yaml+path%3A%2F&per_page=2&page=2",
    ]
    assert [item["id"] for item in result.items] == [0, 1, 2]
    assert client.stats.requests == {"core": 0, "search": 0, "code_search": 2}


def test_search_rejects_limit_below_one(client: GitHubClient):
    with pytest.raises(ValueError, match="limit must be at least 1"):
        client.search_repositories(QUERY, limit=0)


def test_search_body_without_items_is_response_error(
    make_client, transport: FakeTransport, sleeps: list[float]
):
    transport.add(json_reply({"total_count": 3}))

    with pytest.raises(GitHubResponseError, match="search answer has no list of item objects"):
        make_client(max_retries=0).search_repositories(QUERY, limit=3)


# -- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backoff", "expected_sleeps"),
    [(1.0, [1.0, 2.0]), (0.25, [0.25, 0.5])],
    ids=["backoff-1s", "backoff-quarter-second"],
)
def test_retries_bad_gateway_and_unavailable_then_succeeds(
    make_client, transport: FakeTransport, sleeps: list[float], backoff: float, expected_sleeps
):
    transport.add(
        Reply(502, "<html><title>502 Bad Gateway</title></html>", {"Content-Type": "text/html"}),
        json_reply({"message": "Service Unavailable"}, 503),
        json_reply({"full_name": "octo/hello"}),
    )
    client = make_client(backoff_seconds=backoff)

    assert client.get_repository("octo/hello") == {"full_name": "octo/hello"}

    assert len(transport.requests) == 3
    assert sleeps == expected_sleeps
    assert client.stats.retries == 2
    assert client.stats.retry_wait_seconds == sum(expected_sleeps)
    assert client.stats.errors == {"GitHubServerError": 2}


def test_retries_exhausted_raises_last_server_error(
    client: GitHubClient, transport: FakeTransport, sleeps: list[float]
):
    for _ in range(4):
        transport.add(
            json_reply({"error": "Server Error"}, 500, X_GitHub_Request_Id="F9D6:235E:3C00DD")
        )

    with pytest.raises(GitHubServerError) as caught:
        client.get_repository("octo/hello")

    assert str(caught.value) == (
        "GitHub API GET /repos/octo/hello returned 500 Internal Server Error: Server Error"
        " (request id F9D6:235E:3C00DD)"
    )
    assert caught.value.status == 500
    assert caught.value.path == "/repos/octo/hello"
    assert caught.value.request_id == "F9D6:235E:3C00DD"
    assert len(transport.requests) == 4
    assert sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("failure", "description"),
    [
        (requests.ReadTimeout("read timed out"), "request timed out (ReadTimeout)"),
        (requests.ConnectTimeout("connect timed out"), "request timed out (ConnectTimeout)"),
        (requests.ConnectionError("refused"), "connection failed (ConnectionError)"),
        (
            requests.exceptions.ChunkedEncodingError("connection dropped"),
            "request failed (ChunkedEncodingError)",
        ),
    ],
    ids=["read-timeout", "connect-timeout", "connection-refused", "dropped-mid-body"],
)
def test_transport_failures_are_retried(
    client: GitHubClient,
    transport: FakeTransport,
    sleeps: list[float],
    failure: Exception,
    description: str,
):
    transport.add(failure, json_reply({"resources": {}}))

    assert client.rate_limit() == {"resources": {}}
    assert sleeps == [1.0]
    assert client.stats.errors == {"GitHubTransportError": 1}

    transport.add(*[failure] * 4)
    with pytest.raises(GitHubTransportError) as caught:
        client.rate_limit()
    assert str(caught.value) == f"GitHub API GET /rate_limit failed: {description}"
    assert caught.value.status is None


def test_malformed_json_is_retried_then_raises_response_error(
    client: GitHubClient, transport: FakeTransport, sleeps: list[float]
):
    transport.add(*[Reply(200, b'{"id": 1', {"Content-Type": "application/json"})] * 4)

    with pytest.raises(
        GitHubResponseError,
        match=r"GET /repos/octo/hello returned 200 OK: expected JSON, got 8 bytes of application/",
    ):
        client.get_repository("octo/hello")

    assert len(transport.requests) == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_html_success_body_then_json_succeeds(
    client: GitHubClient, transport: FakeTransport, sleeps: list[float]
):
    transport.add(
        Reply(200, "<!DOCTYPE html><html></html>", {"Content-Type": "text/html"}), json_reply([])
    )

    assert client.get_json("/repos/octo/hello/topics") == []
    assert sleeps == [1.0]


def test_not_found_raises_immediately(
    client: GitHubClient, transport: FakeTransport, sleeps: list[float]
):
    transport.add(json_reply({"message": "Not Found"}, 404, X_GitHub_Request_Id="1234:ABCD"))

    with pytest.raises(GitHubNotFound) as caught:
        client.get_repository("octo/missing")

    assert str(caught.value) == (
        "GitHub API GET /repos/octo/missing returned 404 Not Found: Not Found"
        " (request id 1234:ABCD)"
    )
    assert len(transport.requests) == 1
    assert sleeps == []


def test_permission_error_is_not_retried(client: GitHubClient, transport: FakeTransport):
    transport.add(
        json_reply(
            {"message": "Must have push access to repository"}, 403, X_RateLimit_Remaining="53"
        )
    )

    with pytest.raises(GitHubPermissionError, match="Must have push access to repository"):
        client.get_json("/repos/octo/hello/traffic/views")

    assert len(transport.requests) == 1


def test_retriable_tuple_lists_transient_errors():
    expected = (GitHubServerError, GitHubTransportError, GitHubRateLimitError, GitHubResponseError)
    assert expected == RETRIABLE


# -- 401 and token refresh ----------------------------------------------------------------------


def test_unauthorized_replays_once_with_new_token(make_client, transport: FakeTransport):
    tokens = RefreshingToken(["old-token", "new-token"])
    transport.add(
        json_reply({"message": "Bad credentials"}, 401), json_reply({"full_name": "octo/hello"})
    )

    result = make_client(token_source=tokens).get_repository("octo/hello")

    assert result == {"full_name": "octo/hello"}
    assert [r.headers["Authorization"] for r in transport.requests] == [
        "Bearer old-token",
        "Bearer new-token",
    ]
    assert tokens.unauthorized_calls == 1


def test_unauthorized_without_new_token_raises(make_client, transport: FakeTransport):
    tokens = RefreshingToken(["old-token"], can_refresh=False)
    transport.add(json_reply({"message": "Bad credentials"}, 401))

    with pytest.raises(GitHubAuthError, match="returned 401 Unauthorized: Bad credentials"):
        make_client(token_source=tokens).get_repository("octo/hello")

    assert len(transport.requests) == 1
    assert tokens.unauthorized_calls == 1


def test_second_unauthorized_after_replay_raises(make_client, transport: FakeTransport):
    tokens = RefreshingToken(["old-token", "new-token", "newer-token"])
    transport.add(*[json_reply({"message": "Bad credentials"}, 401)] * 2)

    with pytest.raises(GitHubAuthError, match="Bad credentials"):
        make_client(token_source=tokens).get_repository("octo/hello")

    assert len(transport.requests) == 2
    assert tokens.unauthorized_calls == 1


def test_token_with_control_characters_is_refused_without_echo(
    make_client, transport: FakeTransport
):
    client = make_client(token_source=StaticToken("ghp_TESTSECRET123\r\nX-Evil: 1"))

    with pytest.raises(GitHubAuthError) as caught:
        client.get_repository("octo/hello")

    assert "TESTSECRET" not in str(caught.value)
    assert transport.requests == []


# -- rate limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "message", "kind", "retry_after", "reset_at", "resource"),
    [
        (
            403,
            {
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": "1700000000",
                "x-ratelimit-resource": "search",
            },
            "API rate limit exceeded for user ID 1.",
            "primary",
            None,
            1700000000.0,
            "search",
        ),
        (
            403,
            {"X-RateLimit-Remaining": "0"},
            "API Rate Limit Exceeded for 192.0.2.1",
            "primary",
            None,
            None,
            None,
        ),
        (
            429,
            {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "1700000060"},
            "",
            "primary",
            None,
            1700000060.0,
            None,
        ),
        (
            403,
            {"Retry-After": "60", "X-RateLimit-Remaining": "25"},
            "You have exceeded a secondary rate limit. Please wait a few minutes.",
            "secondary",
            60.0,
            None,
            None,
        ),
        (
            403,
            {},
            "You have exceeded a secondary rate limit and have been temporarily blocked.",
            "secondary",
            None,
            None,
            None,
        ),
        (
            403,
            {"Retry-After": "30"},
            "You have triggered an abuse detection mechanism.",
            "secondary",
            30.0,
            None,
            None,
        ),
        (
            403,
            {},
            "You have triggered an abuse detection mechanism.",
            "secondary",
            None,
            None,
            None,
        ),
        (429, {}, "", "secondary", None, None, None),
        (403, {"Retry-After": "120"}, "Please wait.", "secondary", 120.0, None, None),
        (
            403,
            {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
            "Please wait.",
            "secondary",
            0.0,
            None,
            None,
        ),
    ],
    ids=[
        "primary-remaining-0-with-reset",
        "primary-without-reset-header",
        "primary-429",
        "secondary-retry-after",
        "secondary-message-only",
        "abuse-detection-retry-after",
        "abuse-detection-message-only",
        "bare-429",
        "retry-after-without-known-wording",
        "retry-after-as-past-http-date",
    ],
)
def test_rate_limit_classification(status, headers, message, kind, retry_after, reset_at, resource):
    error = classify_response(
        status, headers, json.dumps({"message": message}), method="GET", path="/search/code"
    )

    assert isinstance(error, GitHubRateLimitError)
    assert (error.kind, error.retry_after, error.reset_at, error.resource) == (
        kind,
        retry_after,
        reset_at,
        resource,
    )


def test_forbidden_with_remaining_quota_is_permission_error():
    error = classify_response(
        403,
        {"X-RateLimit-Remaining": "53"},
        b'{"message": "Must have push access to repository"}',
        method="GET",
        path="/repos/a/b/traffic/views",
    )

    assert type(error) is GitHubPermissionError


def test_rate_limit_is_not_retried_by_default(
    client: GitHubClient, transport: FakeTransport, sleeps: list[float]
):
    transport.add(
        json_reply({"message": "API rate limit exceeded"}, 403, X_RateLimit_Remaining="0")
    )

    with pytest.raises(GitHubRateLimitError, match="API rate limit exceeded"):
        client.search_repositories(QUERY, limit=10)

    assert len(transport.requests) == 1
    assert sleeps == []


def test_rate_limit_policy_decides_the_wait(
    make_client, transport: FakeTransport, sleeps: list[float]
):
    policy = RecordingPolicy(wait=7.5)
    transport.add(
        json_reply({"message": "You have exceeded a secondary rate limit"}, 403, Retry_After="5"),
        search_page(3, next_page=False),
    )
    client = make_client(rate_limit_policy=policy)

    result = client.search_repositories(QUERY, limit=10)

    assert len(result.items) == 3
    assert sleeps == [7.5]
    assert policy.asked == [("secondary", 0)]
    assert policy.before == ["search", "search"]
    assert policy.after == [("search", 403), ("search", 200)]
    assert client.stats.retry_wait_seconds == 7.5


def test_rate_limit_policy_giving_up_raises(make_client, transport: FakeTransport):
    policy = RecordingPolicy(wait=None)
    transport.add(json_reply({"message": "secondary rate limit"}, 429))

    with pytest.raises(GitHubRateLimitError, match="429 Too Many Requests"):
        make_client(rate_limit_policy=policy).get_repository("octo/hello")

    assert policy.asked == [("secondary", 0)]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (GitHubRateLimitError("x", kind="secondary", retry_after=60.0), 60.0),
        (GitHubRateLimitError("x", kind="primary", reset_at=1_000_030.0), 31.0),
        (GitHubRateLimitError("x", kind="secondary"), 60.0),
        (GitHubRateLimitError("x", kind="primary"), None),
        (GitHubRateLimitError("x", kind="primary", reset_at=1_000_500.0), None),
        (GitHubRateLimitError("x", kind="primary", reset_at=999_000.0), 0.0),
    ],
    ids=[
        "retry-after",
        "until-reset-plus-margin",
        "secondary-default-minute",
        "primary-unknown-reset",
        "reset-too-far",
        "reset-in-past",
    ],
)
def test_wait_for_reset_policy(error: GitHubRateLimitError, expected: float | None):
    policy = WaitForResetPolicy(max_wait_seconds=120.0, clock=lambda: 1_000_000.0)

    assert policy.wait_for(error, 0) == expected


# -- READMEs ------------------------------------------------------------------------------------


def test_get_readme_decodes_and_keeps_etag(client: GitHubClient, transport: FakeTransport):
    transport.add(
        json_reply(readme_payload("# Hello\n\nCafé", path="docs/ReadMe.rst"), ETag='W/"abc"')
    )

    readme = client.get_readme("octo/hello")

    assert readme == Readme(
        full_name="octo/hello",
        path="docs/ReadMe.rst",
        text="# Hello\n\nCafé",
        sha="0123abcd",
        size=14,
        etag='W/"abc"',
    )
    assert transport.urls == [f"{BASE}/repos/octo/hello/readme"]
    assert "If-None-Match" not in transport.requests[0].headers


def test_get_readme_not_modified(client: GitHubClient, transport: FakeTransport):
    transport.add(Reply(304, None, {"ETag": '"abc"'}))

    readme = client.get_readme("octo/hello", etag='W/"abc"')

    assert transport.requests[0].headers["If-None-Match"] == 'W/"abc"'
    assert readme == Readme("octo/hello", None, None, None, None, 'W/"abc"', not_modified=True)
    assert client.stats.not_modified == 1


def test_get_readme_missing(client: GitHubClient, transport: FakeTransport, sleeps: list[float]):
    transport.add(json_reply({"message": "Not Found"}, 404))

    readme = client.get_readme("octo/empty")

    assert readme == Readme("octo/empty", None, None, None, None, None, missing=True)
    assert sleeps == []


def test_get_readme_percent_encodes_names(client: GitHubClient, transport: FakeTransport):
    transport.add(json_reply(readme_payload("x")))

    client.get_readme("ö-org/a-ö")

    assert transport.urls == [f"{BASE}/repos/%C3%B6-org/a-%C3%B6/readme"]


@pytest.mark.parametrize("name", ["octo", "octo/", "/hello", "a/b/c", ""], ids=repr)
def test_repository_name_must_be_owner_slash_name(client: GitHubClient, name: str):
    with pytest.raises(ValueError, match="expected a repository name like 'owner/name'"):
        client.get_repository(name)


def test_get_readmes_bounded_concurrency_and_isolated_failure(make_client, sleeps):
    names = [f"octo/repo{i}" for i in range(12)]

    def answer(request: requests.PreparedRequest) -> Reply:
        repo = path_of(request.url).split("/")[3]
        if repo == "repo7":
            return Reply(500, {"error": "Server Error"}, {"Content-Type": "application/json"}, 0.05)
        if repo == "repo3":
            return Reply(304, None, {"ETag": '"e3"'}, 0.05)
        return Reply(200, readme_payload(f"# {repo}"), {"Content-Type": "application/json"}, 0.05)

    transport = FakeTransport(handler=answer)
    client = make_client(session=session_with(transport), readme_workers=4, max_retries=1)

    results = client.get_readmes(names, etags={"octo/repo3": '"e3"'})

    assert list(results) == names
    assert transport.max_in_flight == 4
    failed = results["octo/repo7"]
    assert isinstance(failed, GitHubServerError)
    assert failed.path == "/repos/octo/repo7/readme"
    assert results["octo/repo3"] == Readme(
        "octo/repo3", None, None, None, None, '"e3"', not_modified=True
    )
    fetched = [name for name in names if name not in ("octo/repo7", "octo/repo3")]
    assert {name: results[name].text for name in fetched} == {
        name: f"# {name.split('/')[1]}" for name in fetched
    }
    assert len(transport.requests) == 13  # repo7 retried once
    assert client.stats.not_modified == 1
    assert client.stats.requests == {"core": 13, "search": 0, "code_search": 0}


def test_get_readmes_empty_sequence_sends_nothing(client: GitHubClient, transport: FakeTransport):
    assert client.get_readmes([]) == {}
    assert transport.requests == []


# -- redirects ----------------------------------------------------------------------------------


def test_get_repository_follows_same_host_redirect_with_authorization(
    client: GitHubClient, transport: FakeTransport
):
    transport.add(
        json_reply(
            {"message": "Moved Permanently", "url": f"{BASE}/repositories/42"},
            301,
            Location=f"{BASE}/repositories/42",
        ),
        json_reply({"id": 42, "full_name": "new-owner/hello"}),
    )

    assert client.get_repository("old-owner/hello") == {"id": 42, "full_name": "new-owner/hello"}

    assert transport.urls == [f"{BASE}/repos/old-owner/hello", f"{BASE}/repositories/42"]
    assert transport.requests[1].headers["Authorization"] == f"Bearer {TOKEN}"
    assert client.stats.requests["core"] == 2


def test_redirect_to_another_host_is_refused(client: GitHubClient, transport: FakeTransport):
    transport.add(
        *[json_reply({"message": "Moved"}, 301, Location="https://elsewhere.example.test/x")] * 4
    )

    with pytest.raises(GitHubResponseError, match="redirect to another host refused"):
        client.get_repository("octo/hello")

    assert all(path_of(url) == "/repos/octo/hello" for url in transport.urls)


# -- stats --------------------------------------------------------------------------------------


def test_stats_count_requests_per_resource(client: GitHubClient, transport: FakeTransport):
    transport.add(
        search_page(1, next_page=False),
        search_page(1),
        search_page(1, next_page=False),
        json_reply({"id": 1}),
        Reply(304, None, {}),
    )

    client.search_repositories(QUERY, limit=5)
    client.search_code("x", limit=2, per_page=1)
    client.get_repository("octo/hello")
    client.get_readme("octo/hello", etag='"x"')

    expected = {
        "requests": {"core": 2, "search": 1, "code_search": 2},
        "not_modified": 1,
        "retries": 0,
        "retry_wait_seconds": 0.0,
        "errors": {},
    }
    assert client.stats.as_dict() == expected
    assert json.loads(json.dumps(client.stats.as_dict())) == expected


def test_stats_increments_are_thread_safe(client: GitHubClient):
    def hammer() -> None:
        for _ in range(2000):
            client.stats.record_request("core")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert client.stats.requests["core"] == 16000


# -- error objects ------------------------------------------------------------------------------


def test_error_text_strips_query_and_masks_tokens():
    error = GitHubError(
        "token ghp_abcdefghijkl leaked", status=400, path="/search/code?q=secret&access_token=x"
    )

    assert (
        str(error)
        == "GitHub API GET /search/code returned 400 Bad Request: token <redacted token> leaked"
    )
    assert repr(error) == (
        "GitHubError(status=400, method='GET', path='/search/code', request_id=None,"
        " message='token <redacted token> leaked')"
    )


def test_errors_survive_pickling():
    error = classify_response(
        403, {"Retry-After": "60"}, b'{"message": "abuse detection"}', method="GET", path="/x"
    )

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is GitHubRateLimitError
    assert (copy.kind, copy.retry_after, str(copy)) == ("secondary", 60.0, str(error))


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            "<html><head><title>Unicorn! &middot; GitHub</title></head></html>",
            "text/html",
            "HTML page: Unicorn! · GitHub",
        ),
        (
            "<html><body><h1>503 Service Unavailable</h1>No server</body></html>",
            "application/json",
            "HTML page: 503 Service Unavailable",
        ),
        (
            b"\xff\xfe garbage",
            "application/octet-stream",
            "non-JSON body (10 bytes, content type application/octet-stream)",
        ),
        ('{"error": "Server Error"}', "application/json", "Server Error"),
        (None, None, "Service Unavailable"),
    ],
    ids=["html-title", "html-h1-with-json-content-type", "binary", "error-key", "empty-body"],
)
def test_server_error_messages_from_any_body(body, content_type, message):
    headers = {"Content-Type": content_type} if content_type else {}

    error = classify_response(503, headers, body, method="GET", path="/repos/a/b")

    assert type(error) is GitHubServerError
    assert error.message == message


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 307], ids=str)
def test_non_error_statuses_classify_as_none(status: int):
    assert classify_response(status, {}, b"", method="GET", path="/x") is None


def test_unexpected_client_error_is_base_error():
    error = classify_response(410, {}, b'{"message": "Gone"}', method="GET", path="/x")

    assert type(error) is GitHubError
    assert str(error) == "GitHub API GET /x returned 410 Gone: Gone"


# -- secrets never leak (real local HTTP server, so urllib3 logs for real) ---------------------

SECRET = "ghp_TESTSECRET123"


class _SecretCheckHandler(BaseHTTPRequestHandler):
    """Answer 401, 500 or (slowly) 200 and remember the Authorization headers seen."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        """Answer by path: /user 401, /repos 500, anything else slowly."""
        type(self).seen.append(self.headers.get("Authorization", ""))
        if self.path.startswith("/user"):
            self._answer(401, b'{"message": "Bad credentials"}')
        elif self.path.startswith("/repos"):
            self._answer(500, b'{"error": "Server Error"}')
        else:
            time.sleep(3.0)  # far beyond the client's read timeout
            self._answer(200, b"{}")

    def _answer(self, status: int, body: bytes) -> None:
        """Write a JSON answer, ignoring a client that already hung up."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-GitHub-Request-Id", "LOCAL:1")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting (timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def local_server() -> Iterator[str]:
    """Serve ``_SecretCheckHandler`` on 127.0.0.1 and return its base URL."""
    _SecretCheckHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SecretCheckHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_token_never_appears_in_logs_or_errors(local_server: str, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "requests", "trender"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    session = requests.Session()
    session.trust_env = False
    client = GitHubClient(
        local_server,
        StaticToken(SECRET),
        timeout=(2.0, 0.5),
        max_retries=1,
        session=session,
        sleep=lambda seconds: None,
    )
    texts: list[str] = []
    calls = [
        (lambda: client.get_json("/user"), GitHubAuthError),
        (lambda: client.get_repository("octo/hello"), GitHubServerError),
        (lambda: client.get_json("/slow"), GitHubTransportError),
    ]
    for call, expected in calls:
        with pytest.raises(expected) as caught:
            call()
        error = caught.value
        texts += [str(error), repr(error), repr(error.args), repr(vars(error))]
        # A chained requests exception would carry the prepared request and its headers.
        assert (error.__cause__, error.__context__) == (None, None)
    session.close()

    assert _SecretCheckHandler.seen.count(f"Bearer {SECRET}") == 5  # 1 + 2 + 2 attempts
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.args)
    for text in texts:
        assert SECRET not in text
