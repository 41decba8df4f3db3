"""Replay real recorded GitHub exchanges (the shared corpus) through the client and classifier."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.github.fakes import FakeTransport, Reply, corpus_reply, path_of, query_of, session_with
from trender.github.client import GitHubClient, StaticToken
from trender.github.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubPermissionError,
    GitHubRateLimitError,
    GitHubServerError,
    GitHubValidationError,
    classify_response,
    oauth_error,
)
from trender.github.readme import decode_readme_raw

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "github-corpus"
BASE = "https://api.github.com"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")

MISSING = None  # the 2014 answers carry no incomplete_results key at all

# file -> (total_count, item count, incomplete_results or MISSING), from INDEX.md "Computed".
SEARCH_REPOSITORIES = {
    "github3py__q-github3+language-python__per_page-100__2017-02-07.json": (8, 8, False),
    "github3py__q-github3+language-python__text-match__2017-02-11.json": (8, 8, False),
    "hub4j__q-org-hub4j-test-org__2022-02-15.json": (45, 30, False),
    "hub4j__q-tetris+language-assembly__sort-stars__2019-10-07.json": (1677, 30, False),
    "hub4j__q-user-t0m4uk1991+is-public+fork-only__2021-06-24.json": (2, 2, False),
    "hub4j__q-user-t0m4uk1991+is-public+fork-true__2021-06-24.json": (14, 14, False),
    "octokitrb__q-octokit+language-Python__per_page-1__page1__2015-04-29.json": (2, 1, False),
    "octokitrb__q-octokit+language-Python__per_page-1__page2__2015-04-29.json": (2, 1, False),
    "octokitrb__q-tetris+language-assembly__sort-stars__2014-01-11.json": (77, 30, MISSING),
    "pygithub__q-doesnotexist__per_page-1__empty__EDITED.json": (0, 0, False),
    "pygithub__q-github+language-Python__sort-stars__page1__2014-03-03.json": (2723, 30, MISSING),
    "pygithub__q-github+language-Python__sort-stars__page2__2014-03-03.json": (2723, 30, MISSING),
}
SEARCH_CODE = {
    "github3py__q-HTTPAdapter+in-file+language-python+repo-kennethreitz-requests"
    "__2017-02-07.json": (
        3,
        3,
        False,
    ),
    "github3py__q-HTTPAdapter__text-match__2017-02-11.json": (3, 3, False),
    "hub4j__q-addClass+in-file+language-js+repo-jquery-jquery__order-desc__2021-04-15.json": (
        7,
        7,
        False,
    ),
    "hub4j__q-addClass+language-js+fork-true__2021-11-22.json": (44257787, 29, False),
    "octokitrb__q-code+user-github+in-file+extension-gemspec+-repo__sort-indexed"
    "__2014-01-11.json": (
        6,
        6,
        MISSING,
    ),
    "pygithub__q-jacquev6__31140-results__2018-10-23.json": (31140, 30, False),
    "pygithub__q-profile=black+in-file+language-toml__per_page-5__page1__2026-01-07.json": (
        7,
        5,
        False,
    ),
    "pygithub__q-profile=black+in-file+language-toml__per_page-5__page1__incomplete-true"
    "__EDITED.json": (
        7,
        5,
        True,
    ),
    "pygithub__q-profile=black+in-file+language-toml__per_page-5__page2__2026-01-07.json": (
        7,
        2,
        False,
    ),
    "pygithub__q-toto+user-jacquev6__sort-indexed__2014-03-03.json": (14, 14, MISSING),
}
SPEC_SEARCHES = {
    "spec__search-repositories__example.json": ("/search/repositories", 40, 1, False),
    "spec__search-code__example.json": ("/search/code", 7, 1, False),
}

# Redirects are not errors: the client follows same-host 301/302/307/308 itself (a 307 keeps
# the method, which only matters for non-GET requests the client does not make). 304 is
# "not modified", handled by the caller that sent If-None-Match.
ERRORS: dict[str, type[GitHubError] | None] = {
    "301__moved-permanently__renamed-org__hub4j__2020-05-11.json": None,
    "301__moved-permanently__renamed-repo__github3py__2018-01-05.json": None,
    "301__moved-permanently__renamed-repo__octokit-fixtures__2022.json": None,
    "304__not-modified__repos__if-none-match__pygithub__2013-08-22.json": None,
    "304__not-modified__repos__weak-etag__pygithub__2023-11-18.json": None,
    "307__temporary-redirect__patch-old-name__octokit-fixtures__2022.json": None,
    "401__2fa-otp-required__pygithub__2019-10-25.json": GitHubAuthError,
    "401__bad-credentials__octokitrb__2019-09-18.json": GitHubAuthError,
    "401__bad-credentials__rate_limit__hub4j__2020-03-31.json": GitHubAuthError,
    "401__bad-credentials__user__pygithub__2012__EDITED.json": GitHubAuthError,
    "403__missing-user-agent__pygithub__2013-05-17.json": GitHubPermissionError,
    "403__permission-not-rate-limit__must-have-push-access__hub4j__2019-12-04.json": (
        GitHubPermissionError
    ),
    "403__primary-rate-limit__remaining-0__unauthenticated__pygithub__2013-05-17.json": (
        GitHubRateLimitError
    ),
    "403__secondary-rate-limit__abuse-detection__retry-after-60__search-code__pygithub"
    "__2018-10-23.json": (GitHubRateLimitError),
    "404__repo-not-found__octokitrb__2013-06-26.json": GitHubNotFound,
    "404__repo-not-found__pygithub__2012.json": GitHubNotFound,
    "422__validation-failed__invalid-ssh-key__pygithub__2012-05-30.json": GitHubValidationError,
    "422__validation-failed__label-invalid-color__octokit-fixtures__2022.json": (
        GitHubValidationError
    ),
    "500__server-error__pygithub__2018-10-26__EDITED.json": GitHubServerError,
    "503__non-json-body__pygithub__2012__EDITED.json": GitHubServerError,
    "503__unicorn-html-page__hub4j__2024-03-13.json": GitHubServerError,
}

OAUTH_ERRORS = {
    "code-exchange__success-with-expiry__pygithub__2019__EDITED.json": None,
    "docs__code-exchange__default-form-encoded-response.json": None,
    "docs__refresh__success-example__expires_in-as-string.json": None,
    "docs__token-error__bad_verification_code.json": "bad_verification_code",
    "docs__token-error__incorrect_client_credentials.json": "incorrect_client_credentials",
    "docs__token-error__redirect_uri_mismatch.json": "redirect_uri_mismatch",
    "docs__token-error__unverified_user_email.json": "unverified_user_email",
    "refresh__error__bad_verification_code__pygithub__2019__EDITED.json": "bad_verification_code",
    "refresh__error__unknown-error__pygithub__EDITED.json": "some_unknown_error",
    "refresh__success__pygithub__2023-06-07.json": None,
}

RAW_README = "octokit-fixtures__contents__README.md__raw-media-type__2022-07-19.json"
NON_ASCII_README = "pygithub__jacquev6-PyGithub__contents__README.rst__non-ascii__2013.json"


def files_in(folder: str) -> list[str]:
    """List the corpus files of ``folder``, or nothing when the corpus is absent."""
    directory = CORPUS / folder
    return sorted(p.name for p in directory.glob("*.json")) if directory.is_dir() else []


@cache
def load(folder: str, name: str) -> dict[str, Any]:
    """Read one recorded exchange."""
    return json.loads((CORPUS / folder / name).read_text(encoding="utf-8"))


def header(exchange: dict[str, Any], name: str) -> str | None:
    """Look a recorded response header up case-insensitively."""
    for key, value in exchange["response"]["headers"].items():
        if key.lower() == name.lower():
            return value
    return None


def full_name_of(exchange: dict[str, Any]) -> str:
    """Return ``owner/name`` from a recorded /repos/{owner}/{name}/... request path."""
    parts = exchange["request"]["path"].split("/")
    return f"{parts[2]}/{parts[3]}"


@pytest.fixture
def replay() -> Iterator[Callable[..., tuple[GitHubClient, FakeTransport]]]:
    """Build a client whose transport answers with the given recorded exchanges in order."""
    clients: list[GitHubClient] = []

    def build(*replies: Reply, **options: Any) -> tuple[GitHubClient, FakeTransport]:
        transport = FakeTransport(replies)
        client = GitHubClient(
            BASE,
            StaticToken("corpus-token"),
            session=session_with(transport),
            sleep=lambda seconds: None,
            **options,
        )
        clients.append(client)
        return client, transport

    yield build
    for client in clients:
        client.close()


@pytest.mark.parametrize(
    ("folder", "table"),
    [
        ("search_repositories", SEARCH_REPOSITORIES),
        ("search_code", SEARCH_CODE),
        ("errors", ERRORS),
        ("oauth", OAUTH_ERRORS),
    ],
    ids=["search-repositories", "search-code", "errors", "oauth"],
)
def test_tables_cover_every_corpus_file(folder: str, table: dict):
    assert files_in(folder) == sorted(table)


@pytest.mark.parametrize(
    ("folder", "name"),
    [("search_repositories", n) for n in SEARCH_REPOSITORIES]
    + [("search_code", n) for n in SEARCH_CODE],
    ids=lambda value: value.removesuffix(".json"),
)
def test_search_pages_parse(replay, folder: str, name: str):
    exchange = load(folder, name)
    table = SEARCH_REPOSITORIES if folder == "search_repositories" else SEARCH_CODE
    total, count, incomplete = table[name]
    query = exchange["request"]["query"]["q"]
    client, transport = replay(corpus_reply(exchange))

    if folder == "search_repositories":
        result = client.search_repositories(query, limit=max(count, 1))
    else:
        result = client.search_code(query, limit=max(count, 1))

    body = exchange["response"]["body"]
    assert (result.total_count, len(result.items)) == (total, count)
    assert result.incomplete_results is bool(incomplete)
    assert ("incomplete_results" in body) is (incomplete is not MISSING)
    assert result.items == body["items"]
    assert len(transport.requests) == 1
    assert path_of(transport.urls[0]) == f"/{folder.replace('_', '/')}"
    assert query_of(transport.urls[0])["q"] == query


@pytest.mark.parametrize("name", list(SPEC_SEARCHES), ids=lambda v: v.removesuffix(".json"))
def test_spec_search_examples_parse(replay, name: str):
    exchange = load("spec_examples", name)
    path, total, count, incomplete = SPEC_SEARCHES[name]
    client, _ = replay(corpus_reply(exchange))
    search = client.search_repositories if path == "/search/repositories" else client.search_code

    result = search(exchange["request"]["query"]["q"], limit=count)

    assert (result.total_count, len(result.items), result.incomplete_results) == (
        total,
        count,
        incomplete,
    )


@pytest.mark.parametrize(
    ("folder", "pages", "per_page", "limit", "expected_items"),
    [
        (
            "search_repositories",
            [
                "octokitrb__q-octokit+language-Python__per_page-1__page1__2015-04-29.json",
                "octokitrb__q-octokit+language-Python__per_page-1__page2__2015-04-29.json",
            ],
            1,
            5,
            2,
        ),
        (
            "search_repositories",
            [
                "pygithub__q-github+language-Python__sort-stars__page1__2014-03-03.json",
                "pygithub__q-github+language-Python__sort-stars__page2__2014-03-03.json",
            ],
            30,
            60,
            60,
        ),
        (
            "search_code",
            [
                "pygithub__q-profile=black+in-file+language-toml__per_page-5__page1__2026-01-07.json",
                "pygithub__q-profile=black+in-file+language-toml__per_page-5__page2__2026-01-07.json",
            ],
            5,
            50,
            7,
        ),
    ],
    ids=["last-page-without-next-link", "stops-at-limit", "short-last-page"],
)
def test_recorded_pages_paginate(replay, folder, pages, per_page, limit, expected_items):
    exchanges = [load(folder, name) for name in pages]
    client, transport = replay(*[corpus_reply(e) for e in exchanges])
    query = exchanges[0]["request"]["query"]["q"]
    search = client.search_repositories if folder == "search_repositories" else client.search_code

    result = search(query, limit=limit, per_page=per_page)

    assert len(result.items) == expected_items
    assert result.items == [item for e in exchanges for item in e["response"]["body"]["items"]]
    assert [query_of(url)["page"] for url in transport.urls] == ["1", "2"]
    assert [p.item_count for p in result.pages] == [
        len(e["response"]["body"]["items"]) for e in exchanges
    ]


@pytest.mark.parametrize(
    "name",
    [n for n in files_in("readme") if n != RAW_README],
    ids=lambda v: v.removesuffix(".json"),
)
def test_recorded_readmes_decode(replay, name: str):
    exchange = load("readme", name)
    body = exchange["response"]["body"]
    summary = exchange["content_summary"]
    client, _ = replay(corpus_reply(exchange))

    readme = client.get_readme(full_name_of(exchange))

    assert readme.decode_note is None
    assert readme.text is not None
    assert len(readme.text.encode("utf-8")) == summary["decoded_bytes"]
    assert (readme.path, readme.sha, readme.size) == (body["path"], body["sha"], body["size"])
    assert readme.etag == header(exchange, "ETag")
    assert readme.missing is readme.not_modified is False
    assert (summary["non_ascii"] is True) is (not readme.text.isascii())


def test_non_ascii_readme_keeps_accents(replay):
    exchange = load("readme", NON_ASCII_README)
    client, _ = replay(corpus_reply(exchange))

    readme = client.get_readme(full_name_of(exchange))

    assert "é" in readme.text


def test_raw_media_type_readme_decodes():
    exchange = load("readme", RAW_README)

    text, note = decode_readme_raw(exchange["response"]["body"].encode("utf-8"))

    assert (text, note) == ("# hello-world", None)
    assert len(text) == exchange["content_summary"]["raw_text_len"]


def test_spec_readme_example_is_not_valid_base64(replay):
    exchange = load("spec_examples", "spec__readme__content-file-example.json")
    client, _ = replay(corpus_reply(exchange))

    readme = client.get_readme("octokit/octokit.rb")

    assert (readme.text, readme.decode_note) == (None, "content not valid base64")
    assert (readme.path, readme.size) == ("README.md", 5362)


@pytest.mark.parametrize("name", list(ERRORS), ids=lambda v: v.removesuffix(".json"))
def test_recorded_errors_classify(name: str):
    exchange = load("errors", name)
    reply = corpus_reply(exchange)
    request = exchange["request"]

    error = classify_response(
        reply.status, reply.headers, reply.body, method=request["method"], path=request["path"]
    )

    expected = ERRORS[name]
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error.status == exchange["response"]["status"]
    assert error.path == request["path"]
    assert error.request_id == header(exchange, "X-GitHub-Request-Id")
    assert error.message
    if error.request_id:
        assert str(error).endswith(f"(request id {error.request_id})")


def test_recorded_rate_limits_have_the_right_kind():
    primary = load(
        "errors", "403__primary-rate-limit__remaining-0__unauthenticated__pygithub__2013-05-17.json"
    )
    secondary = load(
        "errors",
        "403__secondary-rate-limit__abuse-detection__retry-after-60__search-code__pygithub"
        "__2018-10-23.json",
    )
    found = []
    for exchange in (primary, secondary):
        reply = corpus_reply(exchange)
        error = classify_response(
            reply.status, reply.headers, reply.body, method="GET", path=exchange["request"]["path"]
        )
        found.append((error.kind, error.retry_after, error.reset_at, error.resource))

    assert found == [("primary", None, None, None), ("secondary", 60.0, None, None)]


def test_recorded_validation_errors_are_not_the_search_cap():
    errors = []
    for name in (n for n, cls in ERRORS.items() if cls is GitHubValidationError):
        reply = corpus_reply(load("errors", name))
        errors.append(classify_response(422, reply.headers, reply.body, method="POST", path="/x"))

    assert [(e.is_search_cap, len(e.errors)) for e in errors] == [(False, 1), (False, 1)]
    assert errors[1].errors == [{"resource": "Label", "code": "invalid", "field": "color"}]


@pytest.mark.parametrize(
    "name",
    [n for n, cls in ERRORS.items() if cls is not None],
    ids=lambda v: v.removesuffix(".json"),
)
def test_recorded_errors_raise_through_the_client(replay, name: str):
    exchange = load("errors", name)
    client, transport = replay(*[corpus_reply(exchange)] * 2, max_retries=1)

    with pytest.raises(ERRORS[name]):
        client.get_json(exchange["request"]["path"])

    retried = ERRORS[name] is GitHubServerError
    assert len(transport.requests) == (2 if retried else 1)


@pytest.mark.parametrize(
    "name",
    [n for n in ERRORS if n.startswith(("301", "307"))],
    ids=lambda v: v.removesuffix(".json"),
)
def test_recorded_redirects_are_followed_with_authorization(replay, name: str):
    redirect = load("errors", name)
    target = load(
        "repos_get",
        "octokit-fixtures__octokit-fixture-org-hello-world__description-null__2022.json",
    )
    client, transport = replay(corpus_reply(redirect), corpus_reply(target))

    result = client.get_repository(full_name_of(redirect))

    assert result == target["response"]["body"]
    assert transport.urls == [f"{BASE}{redirect['request']['path']}", header(redirect, "Location")]
    assert transport.requests[1].headers["Authorization"] == "Bearer corpus-token"


@pytest.mark.parametrize("name", files_in("repos_get"), ids=lambda v: v.removesuffix(".json"))
def test_recorded_repositories_parse(replay, name: str):
    exchange = load("repos_get", name)
    client, transport = replay(corpus_reply(exchange))

    result = client.get_repository(full_name_of(exchange))

    assert result == exchange["response"]["body"]
    assert transport.urls == [f"{BASE}{exchange['request']['path']}"]


@pytest.mark.parametrize("name", list(OAUTH_ERRORS), ids=lambda v: v.removesuffix(".json"))
def test_oauth_answers_are_not_http_errors_and_expose_the_error_code(name: str):
    exchange = load("oauth", name)
    reply = corpus_reply(exchange)

    assert (
        classify_response(
            reply.status, reply.headers, reply.body, method="POST", path="/login/oauth/access_token"
        )
        is None
    )
    assert oauth_error(reply.body) == OAUTH_ERRORS[name]
    assert oauth_error(exchange["response"]["body"]) == OAUTH_ERRORS[name]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect",
            "bad_refresh_token",
        ),
        (b'{"error": "bad_refresh_token"}', "bad_refresh_token"),
        ({"error": ""}, None),
        ("", None),
        (None, None),
    ],
    ids=["form-encoded-error", "json-bytes", "empty-error-key", "empty-text", "none"],
)
def test_oauth_error_shapes(body: Any, expected: str | None):
    assert oauth_error(body) == expected
