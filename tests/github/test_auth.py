"""The hook's credential handling and the OAuth token lifecycle against the replay server."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.github.conftest import CLIENT_ID, CLIENT_SECRET, PAT, iso, run_settings, task_context
from tests.github.test_corpus import OAUTH_ERRORS
from tests.github.test_fault_matrix import TOKEN_ENDPOINT, fetch, oauth_conn, span_metrics
from trender import pipeline
from trender.github.auth import (
    CredentialStore,
    OAuthTokens,
    default_token_url,
    mirror_to_variable,
    parse_expiry,
    tokens_from_answer,
)
from trender.github.client import GitHubClient, StaticToken
from trender.github.errors import (
    GitHubCredentialError,
    GitHubCredentialRejectedError,
    GitHubCredentialUndecryptableError,
    oauth_failure,
)
from trender.github.replay import Fault, oauth_error_body
from trender.hooks.github import TrenderGitHubHook
from trender.vault import Vault, generate_key

CORPUS_OAUTH = Path(__file__).resolve().parents[2].parent / "shared" / "github-corpus" / "oauth"
NOW = dt.datetime(2026, 12, 3, 14, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "anonymous"),
        ({"password": PAT}, "pat"),
        ({"login": CLIENT_ID, "password": CLIENT_SECRET}, "oauth"),
        ({"login": "someone", "password": PAT, "extra": '{"auth_type": "pat"}'}, "pat"),
        ({"password": CLIENT_SECRET, "extra": '{"auth_type": "OAuth"}'}, "oauth"),
    ],
    ids=["nothing", "password", "login", "explicit-pat", "explicit-oauth"],
)
def test_auth_type_is_decided_in_the_documented_order(
    set_github_conn: Any, fields: dict, expected: str
) -> None:
    set_github_conn("https://api.github.com", **fields)

    assert TrenderGitHubHook().auth_type() == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"extra": '{"auth_type": "pat"}'},
         "Connection trender_github has no password: set a personal access token, or OAuth "
         "client credentials with login = client id"),
        ({"password": "x", "extra": '{"auth_type": "basic"}'},
         "Connection trender_github has extra auth_type 'basic': use 'pat' or 'oauth', or leave "
         "it out"),
        ({"password": "x", "extra": '{"auth_type": "oauth"}'},
         "Connection trender_github uses OAuth but has no login: set login = the OAuth client "
         "id (or GITHUB_CLIENT_ID)"),
        ({"login": CLIENT_ID},
         "Connection trender_github uses OAuth but has no password: set password = the OAuth "
         "client secret (or GITHUB_CLIENT_SECRET)"),
    ],
    ids=["pat-without-password", "unknown-type", "oauth-without-login", "oauth-without-secret"],
)  # fmt: skip
def test_misconfigured_connection_says_what_to_set(
    set_github_conn: Any, fields: dict, message: str
) -> None:
    set_github_conn("https://api.github.com", **fields)

    with pytest.raises(ValueError, match=r"^Connection trender_github ") as error:
        TrenderGitHubHook().get_token_source()
    assert str(error.value) == message


def test_hook_constructor_reads_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_TRENDER_GITHUB", raising=False)

    hook = TrenderGitHubHook("no_such_connection")

    assert hook.github_conn_id == "no_such_connection"


@pytest.mark.parametrize(
    ("api_url", "token_url"),
    [
        ("https://api.github.com", "https://github.com/login/oauth/access_token"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/login/oauth/access_token"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123/login/oauth/access_token"),
    ],
    ids=["github.com", "enterprise-server", "replay"],
)
def test_token_url_follows_the_api_host(api_url: str, token_url: str) -> None:
    assert default_token_url(api_url) == token_url


def test_test_connection_reports_owner_and_budgets(server: Any, set_github_conn: Any) -> None:
    set_github_conn(server.url, password=PAT)

    assert TrenderGitHubHook().test_connection() == (
        True,
        "authenticated as replay-user; core 4999/5000, search 30/30, code_search 10/10 remaining",
    )


def test_test_connection_anonymous_says_what_to_set(server: Any, set_github_conn: Any) -> None:
    set_github_conn(server.url)

    ok, message = TrenderGitHubHook().test_connection()

    assert ok is True
    assert message.startswith("anonymous (connection trender_github has no password: set a ")
    assert server.count("/user") == 0


def test_test_connection_rejected_token(oauth_server: Any, set_github_conn: Any) -> None:
    set_github_conn(oauth_server.url, password=PAT)  # the OAuth-mode server never issued it

    ok, message = TrenderGitHubHook().test_connection()

    assert ok is False
    assert message.startswith(
        "Connection trender_github: GitHub API GET /user returned 401 Unauthorized: Bad credentials"
    )
    assert PAT not in message


def test_refresh_token_near_expiry_warns_and_flags_the_metrics(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, db: Any, encryption_key: str,
    manual_clock: Any, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    access, refresh = oauth_server.issue_tokens()
    expires = manual_clock.time() + 10 * 86400
    oauth_conn(set_github_conn, oauth_server, access, refresh,
               refresh_token_expires_at=iso(expires))  # fmt: skip

    with caplog.at_level(logging.WARNING, logger="trender.github.auth"):
        fetch()

    auth = span_metrics(db)["auth"]
    assert auth["refresh_token_expiring"] is True
    assert auth["refresh_token_days_left"] == 10.0
    assert auth["refreshes"] == 0
    assert [r.getMessage() for r in caplog.records if "expires at" in r.getMessage()] == [
        f"The OAuth refresh token of trender_github expires at {iso(expires)} (in 10.0 days); "
        "re-authorize with `python -m trender.auth_setup oauth --client-id <client id>` "
        "(device flow), which stores a new token pair before then"
    ]


def test_expired_refresh_token_fails_without_calling_the_endpoint(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, encryption_key: str,
    manual_clock: Any,
) -> None:  # fmt: skip
    access, refresh = oauth_server.issue_tokens()
    oauth_conn(set_github_conn, oauth_server, access, refresh,
               expires_at=iso(manual_clock.time() - 1),
               refresh_token_expires_at=iso(manual_clock.time() - 1))  # fmt: skip

    with pytest.raises(GitHubCredentialRejectedError, match=r"refresh token of trender_github "
                       r"expired at .*python -m trender\.auth_setup oauth"):  # fmt: skip
        fetch()

    assert oauth_server.count(TOKEN_ENDPOINT) == 0


def test_incorrect_client_credentials_points_at_login_and_password(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, encryption_key: str,
    manual_clock: Any,
) -> None:  # fmt: skip
    access, refresh = oauth_server.issue_tokens(access_expires_in=-1)
    set_github_conn(
        oauth_server.url, login=CLIENT_ID, password="wrong-secret",
        extra=json.dumps({"access_token": access, "refresh_token": refresh,
                          "expires_at": iso(manual_clock.time() - 1)}),
    )  # fmt: skip

    with pytest.raises(GitHubCredentialRejectedError, match=r"\(incorrect_client_credentials: .*"
                       r"check the connection's login \(client id\) and password"):  # fmt: skip
        fetch()

    assert oauth_server.count(TOKEN_ENDPOINT) == 1


def test_store_without_tokens_or_seed_says_how_to_authorize(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, encryption_key: str
) -> None:
    set_github_conn(oauth_server.url, login=CLIENT_ID, password=CLIENT_SECRET)

    with pytest.raises(GitHubCredentialError, match=r"has no stored tokens and nothing to seed "
                       r"them from: set access_token and refresh_token in the connection extra, "
                       r"or GITHUB_REFRESH_TOKEN"):  # fmt: skip
        fetch()


def test_seed_env_names_work_for_a_first_run(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, db: Any, encryption_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    access, refresh = oauth_server.issue_tokens()
    monkeypatch.setenv("GITHUB_ACCESS_TOKEN", access)
    monkeypatch.setenv("GITHUB_REFRESH_TOKEN", refresh)
    monkeypatch.setenv("GITHUB_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", CLIENT_SECRET)
    set_github_conn(oauth_server.url, extra='{"auth_type": "oauth"}')

    result = fetch()

    assert result["repos_fetched"] == 5
    assert result["auth"]["seeded"] is True
    assert oauth_server.count(TOKEN_ENDPOINT) == 0


def test_code_search_without_a_token_fails_before_sending(server: Any) -> None:
    client = GitHubClient(server.url, StaticToken(None), require_token_for_code_search=True)
    with client, pytest.raises(GitHubCredentialError, match=r"^code search needs a token: "
                               r"GitHub answers anonymous code search with 401"):  # fmt: skip
        client.search_code("filename:render.yaml path:/", limit=5)

    assert server.count("/search/code") == 0


def test_render_fetch_refuses_anonymous_code_search_when_opted_out(
    server: Any, set_github_conn: Any, warehouse_url: str
) -> None:
    set_github_conn(server.url, extra='{"anonymous_code_search": false}')
    run = run_settings(params={"dev_mode": False, "languages": ["Python"]})

    with pytest.raises(GitHubCredentialError, match=r"^code search needs a token"):
        pipeline.fetch_render_repos(run, task_context(task_id="fetch_render_repos", map_index=-1))

    assert server.count("/search/code") == 0


def test_variable_mirror_outside_a_task_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trender.github.auth"):
        mirror_to_variable({"credential": "trender_github"})

    assert len(caplog.records) == 1
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(
            "Could not mirror the OAuth token state to Variable trender_github_oauth_token ("
        )
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-03T14:00:00Z", NOW),
        ("2026-12-03 14:00:00 UTC", NOW),
        ("2026-12-03 15:00:00 +0100", NOW),
        (NOW.timestamp(), NOW),
        (str(int(NOW.timestamp())), NOW),
        (None, None),
    ],
    ids=["iso", "github-header-utc", "github-header-offset", "epoch", "epoch-text", "none"],
)
def test_parse_expiry_reads_every_shape(value: Any, expected: dt.datetime | None) -> None:
    assert parse_expiry(value) == expected


def test_tokens_repr_hides_tokens() -> None:
    tokens = OAuthTokens("ghu_secretAccess000", "ghr_secretRefresh000", NOW, None)

    assert "secret" not in repr(tokens)


# -- the recorded OAuth answers ----------------------------------------------------------------


@pytest.mark.skipif(not CORPUS_OAUTH.is_dir(), reason="corpus not found")
@pytest.mark.parametrize("name", sorted(OAUTH_ERRORS))
def test_recorded_oauth_answers_parse(name: str) -> None:
    body = json.loads((CORPUS_OAUTH / name).read_text())["response"]["body"]
    failure = oauth_failure(body)
    expected = OAUTH_ERRORS[name]

    if expected is None:
        assert failure is None
        tokens = tokens_from_answer(body if isinstance(body, dict) else _form(body), NOW)
        assert tokens.access_token
        if isinstance(body, dict) and "expires_in" in body:
            assert tokens.access_expires_at == NOW + dt.timedelta(hours=8)
            assert tokens.refresh_expires_at == NOW + dt.timedelta(seconds=15811200)
    else:
        assert failure is not None
        assert failure.code == expected
        assert failure.pending is False
        assert str(failure).startswith(
            f"GitHub API POST /login/oauth/access_token failed: {expected}"
        )


def _form(body: str) -> dict[str, str]:
    from trender.github.errors import oauth_fields

    return oauth_fields(body)


def test_device_flow_codes_are_pending() -> None:
    assert oauth_failure(oauth_error_body("authorization_pending")).pending is True
    assert oauth_failure(oauth_error_body("slow_down")).pending is True
    assert oauth_failure(oauth_error_body("expired_token")).pending is False


# -- no token value in any log line or error text ----------------------------------------------


def test_no_token_reaches_logs_or_error_texts(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, encryption_key: str,
    manual_clock: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)

    # 401 mid-run, then a refresh.
    access, refresh = oauth_server.issue_tokens()
    oauth_conn(set_github_conn, oauth_server, access, refresh)
    oauth_server.inject("/repos/*/readme", [Fault(401, {"message": "Bad credentials"})])
    texts.append(json.dumps(fetch(run_settings(run_id="r1"), task_context(run_id="r1"))))

    # Expired before the run: a second refresh, then a refresh the endpoint refuses.
    manual_clock.advance(9 * 3600)
    texts.append(json.dumps(fetch(run_settings(run_id="r2"), task_context(run_id="r2"))))
    manual_clock.advance(9 * 3600)
    oauth_server.inject(TOKEN_ENDPOINT, [Fault(200, oauth_error_body("bad_refresh_token"))])
    with pytest.raises(GitHubCredentialRejectedError) as rejected:
        fetch(run_settings(run_id="r3"), task_context(run_id="r3"))
    texts += [str(rejected.value), repr(rejected.value)]

    # A row no key decrypts.
    monkeypatch.setenv("GITHUB_TOKEN_ENCRYPTION_KEY", generate_key())
    with pytest.raises(GitHubCredentialUndecryptableError) as undecryptable:
        fetch(run_settings(run_id="r4"), task_context(run_id="r4"))
    texts += [str(undecryptable.value), repr(undecryptable.value)]

    store = CredentialStore("trender_github", lambda: psycopg.connect(warehouse_url),
                            Vault([encryption_key]))  # fmt: skip
    final = store.decrypt(store.read())
    issued = set(oauth_server.oauth.access) | set(oauth_server.oauth.refresh)
    secrets = issued | {CLIENT_SECRET, final.access_token, final.refresh_token}
    assert len(issued) == 6  # the seed pair and two refreshes
    captured = caplog.text + "\n".join(texts)
    assert "Refreshed the OAuth token of trender_github" in caplog.text  # the logs were captured
    assert [secret for secret in secrets if secret in captured] == []


def test_get_conn_sends_a_bearer_token_never_basic_auth(server: Any, set_github_conn: Any) -> None:
    set_github_conn(server.url, password=PAT)

    session = TrenderGitHubHook().get_conn()

    assert session.headers["Authorization"] == f"Bearer {PAT}"
    assert session.auth is None
    assert session.get(f"{server.url}/user", timeout=5).json()["login"] == "replay-user"
