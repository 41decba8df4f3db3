"""Tiered retention: raw and staging 7 days, analytics 30 days, counted; dry runs delete nothing."""

from __future__ import annotations

import datetime as dt
import logging
import types

import psycopg
import pytest

from tests.sql.test_scoring import staged
from trender import pipeline, warehouse
from trender.settings import RunSettings

TODAY = dt.date(2026, 12, 3)
TABLES = (
    "raw_github_repos",
    "raw_github_searches",
    "stg_repos_validated",
    "stg_validation_errors",
    "stg_repo_candidates",
    "fact_repo_snapshots",
    "dim_repositories",
)


def run_xcom(*, retention_dry_run: bool = False) -> dict:
    return RunSettings(
        dag_id="trender_daily", run_id="cleanup-run", trace_id="t" * 32, snapshot_date=TODAY,
        dev_mode=False, repo_limit=25, languages=("Python",), include_render=False,
        retention_dry_run=retention_dry_run,
    ).to_xcom()  # fmt: skip


def context() -> dict:
    ti = types.SimpleNamespace(
        task_id="cleanup_old_data", map_index=-1, try_number=1, start_date=None
    )
    return {"ti": ti, "run_id": "cleanup-run"}


def load_day(db: psycopg.Connection, day: dt.date, rows: list[dict]) -> None:
    run_id = f"run-{day}"
    dated = [{**row, "snapshot_date": day.isoformat(), "run_id": run_id} for row in rows]
    warehouse.write_raw_repos(
        db,
        [
            {
                "run_id": run_id, "snapshot_date": day.isoformat(), "category": row["category"],
                "repo_id": row["repo_id"], "full_name": row["full_name"], "search_query": "q",
                "payload": {"id": row["repo_id"]}, "readme_status": "missing",
            }
            for row in rows
        ],
    )  # fmt: skip
    warehouse.write_search_pages(
        db,
        [{"run_id": run_id, "snapshot_date": day.isoformat(), "category": "python",
          "search_type": "repositories", "query": "q", "page": 1, "total_count": len(rows),
          "incomplete_results": False, "item_count": len(rows)}],
    )  # fmt: skip
    warehouse.write_staging(db, dated, [])
    params = {"snapshot_date": day, "run_id": run_id, "per_language_limit": 50}
    for name in (
        "load/candidates.sql",
        "load/dim_repositories.sql",
        "load/fact_repo_snapshots.sql",
    ):
        warehouse.run_sql_file(db, name, params)


def counts(db: psycopg.Connection) -> dict[str, int]:
    return {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


@pytest.fixture
def history(db: psycopg.Connection) -> psycopg.Connection:
    """Load days 40, 31, 8, 7 and 0 days before TODAY; repository 1 changes on day -31."""
    load_day(
        db, TODAY - dt.timedelta(days=40), [staged(1, "python", 10, 5), staged(2, "python", 5, 5)]
    )
    load_day(db, TODAY - dt.timedelta(days=31), [staged(1, "python", 20, 5, description="v2")])
    for days in (8, 7, 0):
        load_day(
            db, TODAY - dt.timedelta(days=days), [staged(1, "python", 30, 5, description="v2")]
        )
    return db


def test_retention_deletes_exactly_what_is_past_each_window(
    history: psycopg.Connection, warehouse_url: str
) -> None:
    before = counts(history)
    assert before == {
        "raw_github_repos": 6, "raw_github_searches": 5, "stg_repos_validated": 6,
        "stg_validation_errors": 0, "stg_repo_candidates": 6, "fact_repo_snapshots": 6,
        "dim_repositories": 3,
    }  # fmt: skip
    stats = pipeline.cleanup_old_data(run_xcom(), context())
    # raw/staging keep 7 days back (day -7 stays); analytics keep 30 (day -31 and -40 go).
    assert stats == {
        "raw_github_repos": 4, "raw_github_searches": 3, "stg_repos_validated": 4,
        "stg_validation_errors": 0, "stg_repo_candidates": 4, "fact_repo_snapshots": 3,
        "dim_repositories": 1, "dry_run": False,
    }  # fmt: skip
    history.commit()
    assert counts(history) == {t: before[t] - stats[t] for t in TABLES}
    # the closed first version of repository 1 went; repository 2's current version stays
    remaining = history.execute(
        "select repo_id, description, is_current from dim_repositories order by repo_id"
    ).fetchall()
    assert remaining == [(1, "v2", True), (2, None, True)]


def test_dry_run_counts_and_deletes_nothing(history: psycopg.Connection) -> None:
    before = counts(history)
    stats = pipeline.cleanup_old_data(run_xcom(retention_dry_run=True), context())
    assert stats["dry_run"] is True
    assert (stats["raw_github_repos"], stats["fact_repo_snapshots"], stats["dim_repositories"]) == (
        4, 3, 1,
    )  # fmt: skip
    history.commit()
    assert counts(history) == before


def test_a_version_a_kept_fact_refers_to_is_kept(db: psycopg.Connection) -> None:
    load_day(db, TODAY - dt.timedelta(days=40), [staged(1, "python", 10, 5)])
    load_day(db, TODAY - dt.timedelta(days=20), [staged(1, "python", 20, 5)])  # same version
    load_day(db, TODAY - dt.timedelta(days=10), [staged(1, "python", 30, 5, description="v2")])
    stats = pipeline.cleanup_old_data(run_xcom(), context())
    assert (stats["fact_repo_snapshots"], stats["dim_repositories"]) == (1, 0)


def test_a_cleanup_failure_is_logged_and_never_raised(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    base = warehouse_url.rpartition("/")[0]
    monkeypatch.setenv("AIRFLOW_CONN_TRENDER_POSTGRES", f"{base}/trender_missing_database")
    with caplog.at_level(logging.WARNING, logger="trender.pipeline"):
        stats = pipeline.cleanup_old_data(run_xcom(), context())
    assert stats["dry_run"] is False
    assert stats["error"].startswith("OperationalError")
    assert "Retention cleanup failed and was skipped" in caplog.text
