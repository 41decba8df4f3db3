"""
trender_daily on a real deployment: api-server, scheduler, dag-processor, LocalExecutor.

Unlike ``airflow dags test``, every task here is its own process that reaches Airflow only through
the Task Execution API, and task logs pass through Airflow's secrets masker.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import psycopg
import pytest

from tests.dags.test_trender_daily_run import FULL_RUN_COUNTS, counts
from tests.scheduler.conftest import FinishedRun
from tests.scheduler.stack import DAG_ID, AirflowStack

pytestmark = pytest.mark.scheduler

LANGUAGES = ("Python", "TypeScript", "Go")  # map indexes 0-2 of fetch_language_repos
# Every task instance of a full run: 11 unmapped tasks (4 in aggregate_results), 3 mapped
# fetches and 12 mapped batches (3 per category).
TASK_INSTANCES = 11 + 3 + 12


@pytest.fixture
def warehouse(airflow_stack: AirflowStack) -> Iterator[psycopg.Connection]:
    """Return a connection to the warehouse the deployment loaded."""
    with psycopg.connect(airflow_stack.warehouse_url) as conn:
        yield conn


def _utc(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def test_manual_run_without_logical_date_succeeds(finished_run: FinishedRun) -> None:
    run = finished_run.dag_run
    print(f"run {run['dag_run_id']}: {run['state']} in {finished_run.seconds:.1f} s")
    assert run["state"] == "success"
    assert run["run_type"] == "manual"
    assert run["logical_date"] is None
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in finished_run.task_instances}
    assert len(states) == TASK_INSTANCES
    assert set(states.values()) == {"success"}


def test_warehouse_holds_one_full_run_dated_by_run_after(
    finished_run: FinishedRun, warehouse: psycopg.Connection
) -> None:
    snapshot = _utc(finished_run.dag_run["run_after"]).date()
    assert counts(warehouse) == FULL_RUN_COUNTS
    (facts_of_the_day,) = warehouse.execute(
        "select count(*) from fact_repo_snapshots where snapshot_date = %s", (snapshot,)
    ).fetchone()
    assert facts_of_the_day == FULL_RUN_COUNTS["fact_repo_snapshots"]
    rows = warehouse.execute(
        """
        select run_id, dag_id, snapshot_date, status, success, repos_processed,
               task_tree -> 'failed_tasks'
        from fact_workflow_runs
        """
    ).fetchall()
    assert rows == [(finished_run.run_id, DAG_ID, snapshot, "success", True, 99, [])]


def test_mapped_language_fetches_run_concurrently(finished_run: FinishedRun) -> None:
    fetches = sorted(
        (ti for ti in finished_run.task_instances if ti["task_id"] == "fetch_language_repos"),
        key=lambda ti: ti["map_index"],
    )
    assert [(ti["map_index"], ti["rendered_map_index"], ti["state"]) for ti in fetches] == [
        (index, language, "success") for index, language in enumerate(LANGUAGES)
    ]
    intervals = [(_utc(ti["start_date"]), _utc(ti["end_date"])) for ti in fetches]
    for ti, (start, end) in zip(fetches, intervals, strict=True):
        print(
            f"fetch_language_repos[{ti['rendered_map_index']}]: queued {ti['queued_when']}, "
            f"ran {start.time()} - {end.time()}"
        )
    overlapping = [
        (a, b)
        for (a, (a_start, a_end)), (b, (b_start, b_end)) in itertools.combinations(
            enumerate(intervals), 2
        )
        if a_start < b_end and b_start < a_end
    ]
    assert overlapping, f"no two mapped fetches overlapped: {intervals}"


def test_no_configured_secret_reaches_any_log(
    finished_run: FinishedRun, airflow_stack: AirflowStack
) -> None:
    task_logs = sorted(airflow_stack.logs_dir.glob(f"dag_id={DAG_ID}/**/attempt=*.log"))
    assert len(task_logs) == TASK_INSTANCES  # one try each: every task's log is scanned
    requests = airflow_stack.replay.requests
    assert requests  # the token was really used: every GitHub call carried it
    assert all(request.has_authorization for request in requests)
    leaks = [
        f"{name} in {path}"
        for path in airflow_stack.log_files()
        for name, value in airflow_stack.secrets.items()
        if value.encode() in path.read_bytes()
    ]
    assert leaks == []
