"""
The fault matrix: each test runs the real fetch task against the replay server with one fault
injected, then checks the rows in PostgreSQL, the requests that reached each endpoint and what
the task recorded in its span metrics.

The baseline run (dev mode: Python, top 5) sends one search and five README requests and stores
five raw rows with READMEs and one search page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
from typing import Any

import psycopg
import pytest

from tests.conftest import AS_OF
from tests.github.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    PAT,
    RUN_ID,
    decrypt_row,
    iso,
    run_settings,
    stored_row,
    task_context,
)
from trender import auth_setup, pipeline
from trender.github.auth import CredentialStore, OAuthTokens
from trender.github.errors import (
    GitHubCredentialRejectedError,
    GitHubCredentialUndecryptableError,
    GitHubRateLimitExhaustedError,
)
from trender.github.replay import (
    Fault,
    dropped,
    html_error,
    malformed_json,
    primary_rate_limit,
    secondary_rate_limit,
    slow,
)
from trender.vault import ENCRYPTION_KEY_ENV, Vault, fingerprint, generate_key

SEARCH = "/search/repositories"
README = "/repos/*/readme"
TOKEN_ENDPOINT = "/login/oauth/access_token"
BASELINE_REPOS = 5
MISSING_README_REPO = "driftwood-badger12/prism-relay"  # one of the five, for the 404 fault
EIGHT_HOURS = 8 * 3600
SIX_MONTHS = 15811200


def fetch(run: dict | None = None, context: dict | None = None) -> dict[str, Any]:
    """Run the Python fetch task."""
    return pipeline.fetch_language_repos(run or run_settings(), "Python", context or task_context())


def raw_rows(db: psycopg.Connection, run_id: str = RUN_ID) -> list[tuple]:
    """Return (full_name, readme_status, has text) of the run's raw rows."""
    rows = db.execute(
        """
        select full_name, readme_status, readme_text is not null
        from raw_github_repos where run_id = %s order by full_name
        """,
        (run_id,),
    ).fetchall()
    db.commit()
    return rows


def search_pages(db: psycopg.Connection) -> list[tuple]:
    """Return (page, item_count, incomplete_results) of every stored search page."""
    rows = db.execute(
        "select page, item_count, incomplete_results from raw_github_searches order by page"
    ).fetchall()
    db.commit()
    return rows


def span_metrics(db: psycopg.Connection, run_id: str = RUN_ID) -> dict[str, Any]:
    """Return the metrics the fetch task recorded in its span."""
    row = db.execute(
        "select metrics from ops_task_spans where run_id = %s and task_id = 'fetch_language_repos'",
        (run_id,),
    ).fetchone()
    db.commit()
    assert row is not None, "the fetch task recorded no span"
    return row[0]


def count_status(server: Any, prefix: str, status: int) -> int:
    """Count the requests below ``prefix`` that were answered with ``status``."""
    return sum(1 for r in server.requests if r.path.startswith(prefix) and r.status == status)


def assert_baseline_rows(db: psycopg.Connection) -> None:
    """Check the run stored all five repositories once, each with its README."""
    rows = raw_rows(db)
    assert len(rows) == BASELINE_REPOS
    assert {status for _, status, _ in rows} == {"ok"}
    assert all(has_text for _, _, has_text in rows)
    assert search_pages(db) == [(1, BASELINE_REPOS, False)]


@pytest.fixture
def pat_conn(server: Any, set_github_conn: Any, warehouse_url: str) -> Any:
    """Point trender_github at the replay server with a personal access token."""
    set_github_conn(server.url, password=PAT, extra=json.dumps({"timeout": 0.5}))
    return server


def oauth_conn(set_github_conn: Any, server: Any, access: str, refresh: str, **extra: Any) -> None:
    """Point trender_github at the replay server with OAuth and an initial token pair."""
    set_github_conn(
        server.url,
        login=CLIENT_ID,
        password=CLIENT_SECRET,
        extra=json.dumps({"auth_type": "oauth", "access_token": access, "refresh_token": refresh,
                          **extra}),
    )  # fmt: skip


# -- OAuth lifecycle -----------------------------------------------------------------------------


def test_401_mid_run_refreshes_once_and_replays(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, db: Any, encryption_key: str
) -> None:
    access, refresh = oauth_server.issue_tokens()
    oauth_conn(set_github_conn, oauth_server, access, refresh)
    oauth_server.inject(README, [Fault(401, {"message": "Bad credentials"})])

    result = fetch()

    assert_baseline_rows(db)
    assert oauth_server.count(TOKEN_ENDPOINT) == 1
    assert oauth_server.count("/repos/") == BASELINE_REPOS + 1  # one README replayed
    assert count_status(oauth_server, "/repos/", 401) == 1
    new_access, new_refresh = decrypt_row(stored_row(db), encryption_key)
    assert new_access not in (None, access)
    assert new_refresh not in (None, refresh)
    assert oauth_server.token_valid(new_access)
    metrics = span_metrics(db)
    assert metrics["auth"]["refreshes"] == 1
    assert metrics["auth"]["seeded"] is True
    assert metrics["api"]["errors"] == {"GitHubAuthError": 1}
    assert result["auth"] == metrics["auth"]


def test_expired_token_is_refreshed_before_the_first_request(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, db: Any, encryption_key: str,
    manual_clock: Any,
) -> None:  # fmt: skip
    access, refresh = oauth_server.issue_tokens(access_expires_in=-60)
    oauth_conn(set_github_conn, oauth_server, access, refresh,
               expires_at=iso(manual_clock.time() - 60))  # fmt: skip

    fetch()

    assert_baseline_rows(db)
    assert oauth_server.count(TOKEN_ENDPOINT) == 1
    assert count_status(oauth_server, "/", 401) == 0  # no request went out with the old token
    row = stored_row(db)
    expected_expiry = manual_clock.time() + EIGHT_HOURS
    assert row["access_expires_at"].timestamp() == pytest.approx(expected_expiry, abs=1)
    assert row["updated_by_run"] == RUN_ID
    assert span_metrics(db)["auth"]["refreshes"] == 1


def _refresh_in_child(barrier: Any, env: dict[str, str]) -> dict[str, Any]:
    """Take a token in a fresh process (spawned), as a task would; return its hash and status."""
    os.environ.update(env)
    from trender.hooks.github import TrenderGitHubHook

    barrier.wait()
    source = TrenderGitHubHook("trender_github").get_token_source(run_id="child", mirror=None)
    token = source.token()
    with TrenderGitHubHook("trender_github").get_client(token_source=source) as client:
        login = client.get_json("/user")["login"]
    return {
        "token_sha": hashlib.sha256(token.encode()).hexdigest(),
        "login": login,
        "status": source.status(),
    }


@pytest.mark.parametrize("processes", [2, 4], ids=["two", "four"])
def test_processes_refreshing_at_once_spend_the_refresh_token_once(
    server: Any, set_github_conn: Any, warehouse_url: str, db: Any, encryption_key: str,
    processes: int,
) -> None:  # fmt: skip
    # Separate processes on the real clock; strict server: a replaced access token stops working.
    server.clock = __import__("time").time
    server.enable_oauth(CLIENT_ID, CLIENT_SECRET)
    server.delay_route(TOKEN_ENDPOINT, 0.3)  # keep the lock held while the others arrive
    access, refresh = server.issue_tokens(access_expires_in=-60)
    store = CredentialStore("trender_github", lambda: psycopg.connect(warehouse_url))
    expired = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    store.seed(OAuthTokens(access, refresh, expired, None), "seed")
    oauth_conn(set_github_conn, server, access, refresh)
    env = {
        name: os.environ[name]
        for name in ("AIRFLOW_CONN_TRENDER_GITHUB", "AIRFLOW_CONN_TRENDER_POSTGRES",
                     ENCRYPTION_KEY_ENV)
    }  # fmt: skip

    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            results = pool.starmap(_refresh_in_child, [(barrier, env)] * processes)

    assert server.count(TOKEN_ENDPOINT) == 1
    stored_access, _ = decrypt_row(stored_row(db), encryption_key)
    assert {result["token_sha"] for result in results} == {
        hashlib.sha256(stored_access.encode()).hexdigest()
    }
    assert [result["login"] for result in results] == ["replay-user"] * processes
    assert sum(result["status"]["refreshes"] for result in results) == 1
    assert sum(result["status"]["adopted_refreshes"] for result in results) == processes - 1
    assert count_status(server, "/user", 200) == processes


def test_bad_refresh_token_fails_with_reauthorize_advice_and_keeps_the_row(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, db: Any, encryption_key: str,
    manual_clock: Any,
) -> None:  # fmt: skip
    access, _ = oauth_server.issue_tokens(access_expires_in=-60)
    oauth_conn(set_github_conn, oauth_server, access, "ghr_neverIssuedByTheServer0000",
               expires_at=iso(manual_clock.time() - 60))  # fmt: skip
    store = CredentialStore("trender_github", lambda: psycopg.connect(warehouse_url))
    store.seed(
        OAuthTokens(access, "ghr_neverIssuedByTheServer0000",
                    dt.datetime.fromtimestamp(manual_clock.time() - 60, dt.UTC)),
        "seed",
    )  # fmt: skip
    before = stored_row(db)

    with pytest.raises(
        GitHubCredentialRejectedError,
        match=r"refused OAuth credential trender_github \(bad_refresh_token.*the stored row was "
        r"kept.*python -m trender\.auth_setup oauth",
    ):
        fetch()

    assert stored_row(db) == before
    assert oauth_server.count(TOKEN_ENDPOINT) == 1
    assert oauth_server.count(SEARCH) == 0
    assert raw_rows(db) == []


def test_undecryptable_row_fails_without_calling_the_token_endpoint(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, db: Any, encryption_key: str,
) -> None:  # fmt: skip
    access, refresh = oauth_server.issue_tokens()
    lost_key = generate_key()
    store = CredentialStore(
        "trender_github", lambda: psycopg.connect(warehouse_url), Vault([lost_key])
    )
    store.seed(OAuthTokens(access, refresh), "seed")
    oauth_conn(set_github_conn, oauth_server, access, refresh)

    with pytest.raises(
        GitHubCredentialUndecryptableError,
        match=rf"trender_github cannot be decrypted: it was stored with key "
        rf"{fingerprint(lost_key)}.*python -m trender\.auth_setup oauth",
    ):
        fetch()

    assert oauth_server.count(TOKEN_ENDPOINT) == 0
    assert oauth_server.count("/") == 0
    assert stored_row(db)["key_fingerprint"] == fingerprint(lost_key)


def test_key_rotation_keeps_the_credential_readable(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, db: Any,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    old_key, new_key = generate_key(), generate_key()
    access, refresh = oauth_server.issue_tokens()
    CredentialStore(
        "trender_github", lambda: psycopg.connect(warehouse_url), Vault([old_key])
    ).seed(OAuthTokens(access, refresh), "seed")
    oauth_conn(set_github_conn, oauth_server, access, refresh)
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, f"{new_key},{old_key}")

    fetch()
    status = auth_setup.main(["rotate-key", "--database-url", warehouse_url])
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, new_key)
    fetch(run_settings(run_id="manual__after_rotation"),
          task_context(run_id="manual__after_rotation"))  # fmt: skip

    assert status == 0
    assert (
        f"Re-encrypted 1 credential(s) with key {fingerprint(new_key)}" in capsys.readouterr().out
    )
    row = stored_row(db)
    assert row["key_fingerprint"] == fingerprint(new_key)
    assert decrypt_row(row, new_key) == (access, refresh)
    assert oauth_server.count(TOKEN_ENDPOINT) == 0
    assert len(raw_rows(db, "manual__after_rotation")) == BASELINE_REPOS


# -- rate limits ---------------------------------------------------------------------------------


def test_primary_limit_waits_for_the_reset_on_the_server_clock(
    pat_conn: Any, db: Any, manual_clock: Any
) -> None:
    pat_conn.inject(SEARCH, [primary_rate_limit(reset_in_seconds=30)])

    fetch()

    assert_baseline_rows(db)
    assert pat_conn.count(SEARCH) == 2
    assert manual_clock.slept == [32.0]  # the reset, counted from the Date header, plus 2s
    metrics = span_metrics(db)
    assert metrics["api"]["errors"] == {"GitHubRateLimitError": 1}
    assert metrics["api"]["rate_limits"]["waited_seconds"] == 32.0


@pytest.mark.parametrize(
    ("fault", "wait"),
    [
        (secondary_rate_limit(retry_after=7), 7.0),
        (secondary_rate_limit(), 60.0),
        (secondary_rate_limit(status=429), 60.0),
        (secondary_rate_limit(retry_after=3, status=429), 3.0),
    ],
    ids=["secondary-retry-after", "secondary-no-retry-after", "429", "429-retry-after"],
)
def test_secondary_limit_waits_as_documented(
    pat_conn: Any, db: Any, manual_clock: Any, fault: Fault, wait: float
) -> None:
    pat_conn.inject(SEARCH, [fault])

    fetch()

    assert_baseline_rows(db)
    assert pat_conn.count(SEARCH) == 2
    assert manual_clock.slept == [wait]
    assert span_metrics(db)["api"]["retries"] == 1


def test_secondary_limit_without_retry_after_backs_off_then_gives_up(
    pat_conn: Any, db: Any, manual_clock: Any
) -> None:
    pat_conn.inject(SEARCH, [secondary_rate_limit() for _ in range(5)])

    with pytest.raises(
        GitHubRateLimitExhaustedError,
        match=r"search secondary rate limit: gave up, still limited after 4 retries",
    ):
        fetch()

    assert manual_clock.slept == [60.0, 120.0, 240.0, 480.0]
    assert pat_conn.count(SEARCH) == 5
    assert raw_rows(db) == []


# -- transient failures --------------------------------------------------------------------------


def test_5xx_burst_is_retried_with_backoff(pat_conn: Any, db: Any, manual_clock: Any) -> None:
    pat_conn.inject(
        SEARCH, [Fault(502, {"message": "Server Error"}), Fault(503), Fault(500, {"error": "x"})]
    )

    fetch()

    assert_baseline_rows(db)
    assert pat_conn.count(SEARCH) == 4
    assert manual_clock.slept == [1.0, 2.0, 4.0]
    assert span_metrics(db)["api"]["errors"] == {"GitHubServerError": 3}


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (slow(1.5), "GitHubTransportError"),
        (dropped(), "GitHubTransportError"),
        (html_error(503), "GitHubServerError"),
        (malformed_json(), "GitHubResponseError"),
    ],
    ids=["timeout", "dropped-connection", "html-error-page", "malformed-json"],
)
def test_transient_fault_is_retried_once(
    pat_conn: Any, db: Any, manual_clock: Any, fault: Fault, error: str
) -> None:
    pat_conn.inject(SEARCH, [fault])

    fetch()

    assert_baseline_rows(db)
    assert pat_conn.count(SEARCH) == 2
    assert manual_clock.slept == [1.0]
    assert span_metrics(db)["api"]["errors"] == {error: 1}


# -- search that tells the truth -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("flagged", "requests", "kept_incomplete"),
    [(1, 2, False), (5, 3, True)],
    ids=["complete-on-retry", "still-incomplete"],
)
def test_incomplete_results_are_retried_then_kept_and_recorded(
    pat_conn: Any, db: Any, flagged: int, requests: int, kept_incomplete: bool
) -> None:
    pat_conn.flag_incomplete(SEARCH, flagged)

    fetch()

    assert len(raw_rows(db)) == BASELINE_REPOS
    assert pat_conn.count(SEARCH) == requests
    assert search_pages(db) == [(1, BASELINE_REPOS, kept_incomplete)]
    metrics = span_metrics(db)
    assert metrics["incomplete_results"] is kept_incomplete
    assert metrics["incomplete_pages"] == int(kept_incomplete)
    assert metrics["api"]["incomplete_retries"] == requests - 1


def _search_body(start: int, count: int, total: int = 5000) -> dict[str, Any]:
    items = [
        {"id": 10_000 + n, "full_name": f"cap-owner/repo-{n}", "name": f"repo-{n}"}
        for n in range(start, start + count)
    ]
    return {"total_count": total, "incomplete_results": False, "items": items}


def test_search_cap_422_ends_the_search_and_keeps_earlier_pages(pat_conn: Any, db: Any) -> None:
    run = run_settings(params={"dev_mode": False, "languages": ["Python"], "repo_limit": 100,
                               "include_render": False})  # fmt: skip
    link = f'<{pat_conn.url}{SEARCH}?page=2>; rel="next"'
    cap = {"message": "Only the first 1000 search results are available"}
    # repo_limit 100 takes one page; a second one is asked only if the first is short of it.
    pat_conn.inject(SEARCH, [Fault(200, _search_body(0, 100), {"Link": link}), Fault(422, cap)])

    result = fetch(run)

    assert result["repos_fetched"] == 100
    assert pat_conn.count(SEARCH) == 1
    assert len(raw_rows(db)) == 100
    assert {status for _, status, _ in raw_rows(db)} == {"missing"}  # unknown repositories


def test_client_never_asks_past_the_first_1000_results(pat_conn: Any) -> None:
    from trender.hooks.github import TrenderGitHubHook

    link = f'<{pat_conn.url}{SEARCH}?page=next>; rel="next"'
    pat_conn.inject(
        SEARCH, [Fault(200, _search_body(page * 100, 100), {"Link": link}) for page in range(11)]
    )
    with TrenderGitHubHook().get_client() as client:
        result = client.search_repositories("stars:>1", limit=5000)

    assert pat_conn.count(SEARCH) == 10
    assert len(result.items) == 1000
    assert [page.page for page in result.pages] == list(range(1, 11))


def test_page_past_the_cap_answered_422_is_the_end(pat_conn: Any) -> None:
    from trender.hooks.github import TrenderGitHubHook

    link = f'<{pat_conn.url}{SEARCH}?page=next>; rel="next"'
    cap = {"message": "Only the first 1000 search results are available"}
    pat_conn.inject(SEARCH, [Fault(200, _search_body(0, 50), {"Link": link}), Fault(422, cap)])
    with TrenderGitHubHook().get_client() as client:
        result = client.search_repositories("stars:>1", limit=200, per_page=50)

    assert pat_conn.count(SEARCH) == 2
    assert len(result.items) == 50


# -- READMEs -------------------------------------------------------------------------------------


def test_readme_404_keeps_the_repository(pat_conn: Any, db: Any) -> None:
    pat_conn.inject(f"/repos/{MISSING_README_REPO}/readme", [Fault(404, {"message": "Not Found"})])

    fetch()

    rows = raw_rows(db)
    assert len(rows) == BASELINE_REPOS
    assert (MISSING_README_REPO, "missing", False) in rows
    assert sum(status == "ok" for _, status, _ in rows) == BASELINE_REPOS - 1
    assert pat_conn.count("/repos/") == BASELINE_REPOS  # a 404 is final, never retried
    assert span_metrics(db)["readmes_missing"] == 1


def test_304_reuses_the_stored_readme_and_costs_no_budget(pat_conn: Any, db: Any) -> None:
    yesterday = AS_OF - dt.timedelta(days=1)
    fetch(run_settings(run_id="manual__yesterday", day=yesterday),
          task_context(run_id="manual__yesterday"))  # fmt: skip
    pat_conn.reset_log()

    result = fetch()

    assert pat_conn.count("/repos/") == BASELINE_REPOS
    assert count_status(pat_conn, "/repos/", 304) == BASELINE_REPOS
    rows = raw_rows(db)
    assert [status for _, status, _ in rows] == ["not_modified"] * BASELINE_REPOS
    same_text = db.execute(
        """
        select count(*) from raw_github_repos as today
        join raw_github_repos as before
          on before.repo_id = today.repo_id and before.snapshot_date = %s
        where today.snapshot_date = %s
          and today.readme_text = before.readme_text
          and today.readme_etag = before.readme_etag
        """,
        (yesterday, AS_OF),
    ).fetchone()[0]
    assert same_text == BASELINE_REPOS
    api = span_metrics(db)["api"]
    assert api["free"] == {"not_modified": {"core": BASELINE_REPOS}}
    assert api["charged"]["core"] == 0
    assert result["readmes_not_modified"] == BASELINE_REPOS


# -- the whole DAG -------------------------------------------------------------------------------


@pytest.fixture
def clean_token_variable(airflow_db: None) -> Any:
    """Remove the token-state Variable before and after the test (the metadata DB is shared)."""
    from airflow.models import Variable

    Variable.delete("trender_github_oauth_token")
    yield Variable
    Variable.delete("trender_github_oauth_token")


def test_dag_run_refreshes_an_expired_token_once_and_mirrors_its_state(
    oauth_server: Any, set_github_conn: Any, warehouse_url: str, db: Any, encryption_key: str,
    manual_clock: Any, clean_token_variable: Any,
) -> None:  # fmt: skip
    from tests.dags.dagrun import run_dag

    access, refresh = oauth_server.issue_tokens(access_expires_in=-60)
    oauth_conn(set_github_conn, oauth_server, access, refresh,
               expires_at=iso(manual_clock.time() - 60))  # fmt: skip

    dag_run = run_dag(dt.datetime(2026, 12, 3, 14, tzinfo=dt.UTC), {"dev_mode": True})
    db.commit()

    assert dag_run.state == "success"
    assert oauth_server.count(TOKEN_ENDPOINT) == 1
    assert db.execute("select count(*) from raw_github_repos").fetchone()[0] == BASELINE_REPOS
    (tree,) = db.execute(
        "select task_tree from fact_workflow_runs where run_id = %s", (dag_run.run_id,)
    ).fetchone()
    fetch_node = next(n for n in tree["children"] if n["task_id"] == "fetch_language_repos")
    (instance,) = fetch_node["instances"]
    assert instance["metrics"]["auth"]["refreshes"] == 1
    assert instance["metrics"]["auth"]["refresh_token_expiring"] is False
    state = clean_token_variable.get("trender_github_oauth_token", deserialize_json=True)
    assert state["credential"] == "trender_github"
    assert state["updated_by_run"] == dag_run.run_id
    new_access, new_refresh = decrypt_row(stored_row(db), encryption_key)
    assert new_access not in json.dumps(state)
    assert new_refresh not in json.dumps(state)
