"""The DAG file parses cleanly, touches nothing at parse time, and is shaped as designed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.dags.dagrun import DAG_FILE, load_dag
from trender import warehouse


class ParseTimeAccess(AssertionError):
    """Raised when the DAG file reaches for a connection, a Variable, a database or the network."""


@pytest.fixture
def forbid_io(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every connection lookup, Variable read, database connect and socket connect fail."""
    attempts: list[str] = []

    def refuse(what: str):
        def _refuse(*args: object, **kwargs: object) -> None:
            attempts.append(what)
            raise ParseTimeAccess(f"{what} at parse time")

        return _refuse

    import psycopg
    import psycopg2
    from airflow.sdk import BaseHook, Connection, Variable

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(refuse("connection lookup")))
    monkeypatch.setattr(Connection, "get", classmethod(refuse("connection lookup")))
    monkeypatch.setattr(Variable, "get", staticmethod(refuse("Variable.get")))
    monkeypatch.setattr(psycopg, "connect", refuse("psycopg.connect"))
    monkeypatch.setattr(psycopg2, "connect", refuse("psycopg2.connect"))
    monkeypatch.setattr(socket.socket, "connect", refuse("socket connect"))
    return attempts


def test_dag_file_parses_without_io(forbid_io: list[str]) -> None:
    dag = load_dag()
    assert dag.dag_id == "trender_daily"
    assert forbid_io == []


def test_dag_imports_cleanly_through_a_dagbag(airflow_db: None) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE.parent))
    assert bag.import_errors == {}
    assert list(bag.dags) == ["trender_daily"]


def test_schedule_and_run_policy() -> None:
    dag = load_dag()
    assert dag.schedule == "0 14 * * *"
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert str(dag.timezone) == "UTC"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert set(dag.tags) == {"trender", "github", "analytics"}
    assert dag.doc_md
    assert dag.doc_md.lstrip().startswith("# Trender daily")
    assert dag.owner == "trender"


def test_every_task_retries_except_the_recorder() -> None:
    dag = load_dag()
    retries = {task.task_id: task.retries for task in dag.tasks}
    assert retries.pop("record_run") == 0  # it fails the run on purpose; a retry would repeat that
    assert all(count >= 2 for count in retries.values()), retries


def test_graph_matches_the_design() -> None:
    dag = load_dag()
    assert set(dag.task_ids) == {
        "ensure_schema",
        "resolve_run",
        "list_languages",
        "fetch_language_repos",
        "fetch_render_repos",
        "plan_batches",
        "analyze_repo_batch",
        "aggregate_results.load_candidates",
        "aggregate_results.load_dim_repositories",
        "aggregate_results.load_fact_snapshots",
        "aggregate_results.check_warehouse",
        "cleanup_old_data",
        "record_run",
    }
    downstream = {task.task_id: set(task.downstream_task_ids) for task in dag.tasks}
    assert downstream["ensure_schema"] == {"resolve_run"}
    assert "plan_batches" in downstream["fetch_language_repos"]
    assert "plan_batches" in downstream["fetch_render_repos"]
    assert downstream["analyze_repo_batch"] == {"aggregate_results.load_candidates"}
    assert downstream["aggregate_results.check_warehouse"] == {"cleanup_old_data"}
    assert downstream["cleanup_old_data"] == {"record_run"}
    assert dag.get_task("record_run").trigger_rule == "all_done"
    assert dag.get_task("cleanup_old_data").trigger_rule == "all_done"


def test_mapped_tasks_have_readable_labels() -> None:
    dag = load_dag()
    for task_id in ("fetch_language_repos", "analyze_repo_batch"):
        assert dag.get_task(task_id).map_index_template == "{{ map_label }}"


def test_params_form() -> None:
    params = load_dag().params
    assert params["dev_mode"] is None
    assert params["repo_limit"] is None
    assert params["languages"] == ["Python", "TypeScript", "Go"]
    assert params["include_render"] is True
    assert params["retention_dry_run"] is False
    spec = params.get_param("repo_limit").schema
    assert (spec["minimum"], spec["maximum"]) == (1, 100)


def test_every_schema_file_is_a_numbered_migration_or_repeatable() -> None:
    folder = Path(warehouse.sql_dir()) / "schema"
    migrations = [name for _, name in warehouse.migration_files()]
    assert sorted(migrations + list(warehouse.REPEATABLE_SCHEMA_FILES)) == sorted(
        f"schema/{path.name}" for path in folder.glob("*.sql")
    )
    assert [version for version, _ in warehouse.migration_files()] == list(
        range(1, len(migrations) + 1)
    )


def test_sql_values_are_bound_not_templated() -> None:
    for path in Path(warehouse.sql_dir()).rglob("*.sql"):
        text = path.read_text()
        assert "{{" not in text, f"{path} templates a value; bind it as a parameter"


def test_every_task_documents_itself_for_the_ui() -> None:
    undocumented = [task.task_id for task in load_dag().tasks if not task.doc_md]
    assert undocumented == []


def test_the_fact_load_updates_the_analytics_asset() -> None:
    (asset,) = load_dag().get_task("aggregate_results.load_fact_snapshots").outlets
    assert (asset.name, asset.uri) == (
        "trender_fact_repo_snapshots",
        "x-trender://warehouse/fact_repo_snapshots",
    )
