"""
Fixtures for the real-scheduler tests: one Airflow deployment and one DAG run per session.

These tests are slow (about two minutes), so the collection hook below moves every test marked
``scheduler`` after all others, whatever paths or order pytest was given; their own order
(the run's checks, then the UI screenshot) is kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.scheduler import stack


@dataclass(frozen=True)
class FinishedRun:
    """The DAG run the scheduler finished, as the REST API reports it."""

    dag_run: dict[str, Any]
    task_instances: list[dict[str, Any]]
    seconds: float

    @property
    def run_id(self) -> str:
        """Return the run's id."""
        return self.dag_run["dag_run_id"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests marked ``scheduler`` last, keeping every other order."""
    items.sort(key=lambda item: item.get_closest_marker("scheduler") is not None)


@pytest.fixture(scope="session")
def airflow_stack(
    pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack.AirflowStack]:
    """Run api-server, scheduler and dag-processor for the session."""
    with stack.airflow_stack(pg_server_url, tmp_path_factory.mktemp("scheduler")) as running:
        yield running


@pytest.fixture(scope="session")
def finished_run(airflow_stack: stack.AirflowStack) -> FinishedRun:
    """Trigger trender_daily once through the REST API and wait for the run to finish."""
    started = time.monotonic()
    dag_run = stack.trigger_and_wait(airflow_stack)
    seconds = time.monotonic() - started
    instances = stack.task_instances(airflow_stack, dag_run["dag_run_id"])
    if dag_run["state"] != "success":
        print(airflow_stack.diagnostics())
    return FinishedRun(dag_run, instances, seconds)
