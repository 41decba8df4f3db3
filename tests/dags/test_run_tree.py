"""The run tree on a degraded run: one language search finds nothing and one batch fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import dag_environment
from tests.dags.dagrun import run_dag

LOGICAL_DATE = dt.datetime(2026, 12, 3, 14, tzinfo=dt.UTC)
REJECTED = 868816729  # quillwork-io/sieve-ledger, the most starred render project

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def degraded(pg_server_url: str, schema_template: str) -> Iterator[tuple[object, dict, dict, str]]:
    """Run Go and render; Go's search returns nothing and staging refuses one render project."""
    from trender.github.replay import Fault

    with (
        dag_environment(pg_server_url, schema_template) as (url, server),
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("TRENDER_RETRY_DELAY_SECONDS", "0")
        server.inject(
            "/search/repositories",
            [Fault(status=200, body={"total_count": 0, "incomplete_results": False, "items": []})],
        )
        with psycopg.connect(url) as conn:
            conn.execute(
                "alter table stg_repos_validated "
                f"add constraint refuse_one check (repo_id <> {REJECTED})"
            )
        dag_run = run_dag(LOGICAL_DATE, {"languages": ["Go"], "include_render": True})
        with psycopg.connect(url) as conn:
            summary, tree = conn.execute(
                "select summary, task_tree from fact_workflow_runs"
            ).fetchone()
        yield dag_run, summary, tree, url


@pytest.fixture
def degraded_run(degraded: tuple[object, dict, dict, str]) -> tuple[object, dict, dict]:
    return degraded[:3]


@pytest.fixture
def db(degraded: tuple[object, dict, dict, str]) -> Iterator[psycopg.Connection]:
    with psycopg.connect(degraded[3]) as conn:
        yield conn


def test_the_run_fails_and_says_so(degraded_run: tuple[object, dict, dict]) -> None:
    dag_run, summary, tree = degraded_run
    assert dag_run.state == "failed"
    assert summary["success"] is False
    assert tree["status"] == "failed"
    assert tree["failed_tasks"] == ["analyze_repo_batch"]


def test_every_instance_is_listed_with_its_state(degraded_run: tuple[object, dict, dict]) -> None:
    _, _, tree = degraded_run
    nodes = {node["task_id"]: node for node in tree["children"]}
    assert list(nodes) == [
        "ensure_schema", "resolve_run", "list_languages", "fetch_language_repos",
        "fetch_render_repos", "plan_batches", "analyze_repo_batch",
        "aggregate_results.load_candidates", "aggregate_results.load_dim_repositories",
        "aggregate_results.load_fact_snapshots", "aggregate_results.check_warehouse",
        "cleanup_old_data", "record_run",
    ]  # fmt: skip
    (go,) = nodes["fetch_language_repos"]["instances"]
    assert (go["label"], go["state"], go["metrics"]["repos_fetched"]) == ("Go", "success", 0)
    assert go["metrics"]["total_count"] == 0
    batches = nodes["analyze_repo_batch"]["instances"]
    assert [(b["label"], b["state"], b["try_number"]) for b in batches] == [
        ("render 1-10", "failed", 3),
        ("render 11-20", "success", 1),
        ("render 21-25", "success", 1),
    ]
    assert "refuse_one" in batches[0]["error"]
    assert nodes["analyze_repo_batch"]["state"] == "failed"
    for task_id in ("aggregate_results.load_candidates", "aggregate_results.check_warehouse"):
        assert nodes[task_id]["state"] == "success"
    assert nodes["record_run"]["state"] == "running"
    for node in tree["children"]:
        for entry in node.get("instances", [node]):
            if entry["state"] in ("success", "failed"):
                assert entry["started_at"], node["task_id"]
                assert entry["ended_at"], node["task_id"]
                assert entry["duration"] >= 0


def test_metrics_travel_into_the_tree(degraded_run: tuple[object, dict, dict]) -> None:
    _, summary, tree = degraded_run
    nodes = {node["task_id"]: node for node in tree["children"]}
    render = nodes["fetch_render_repos"]["metrics"]
    assert render["repos_fetched"] == 25
    assert render["api"]["requests"] == {"core": 57, "search": 0, "code_search": 1}
    assert render["readmes_missing"] == 0
    assert summary["repos_processed"] == 15  # two of the three render batches landed
    assert tree["trace_id"] == summary["trace_id"]


def test_what_succeeded_is_kept(
    degraded_run: tuple[object, dict, dict], db: psycopg.Connection
) -> None:
    (facts,) = db.execute("select count(*) from fact_repo_snapshots").fetchone()
    assert facts == 15


def test_invalid_settings_fail_fast_without_red_herrings(
    warehouse_url: str,
    github_conn: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEV_MODE", "true")
    monkeypatch.setenv("DEV_REPO_LIMIT", "abc")
    dag_run = run_dag(LOGICAL_DATE)
    assert dag_run.state == "failed"
    with psycopg.connect(warehouse_url) as conn:
        summary, tree = conn.execute("select summary, task_tree from fact_workflow_runs").fetchone()
    nodes = {node["task_id"]: node for node in tree["children"]}
    resolve = nodes["resolve_run"]
    assert (resolve["state"], resolve["try_number"]) == ("failed", 1)  # no retry of a bad setting
    assert "DEV_REPO_LIMIT must be a whole number, got 'abc'" in resolve["error"]
    assert nodes["plan_batches"]["state"] == "skipped"
    assert nodes["cleanup_old_data"]["state"] == "skipped"
    assert summary["success"] is False
    assert tree["failed_tasks"] == ["resolve_run"]
