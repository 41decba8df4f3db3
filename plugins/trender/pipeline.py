"""The work behind each task of ``trender_daily``, callable without Airflow's task decorators."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from trender import collect, trace, validate, warehouse
from trender import settings as cfg
from trender.settings import RunSettings

log = logging.getLogger(__name__)

GITHUB_CONN_ID = "trender_github"
RETENTION_DAYS = {"raw_days": 7, "staging_days": 7, "analytics_days": 30}
# Tasks whose failure does not fail the run: retention is housekeeping.
OPTIONAL_TASKS = frozenset({"cleanup_old_data"})
CHECK_FILES = (
    "checks/one_current_version.sql",
    "checks/no_overlapping_validity.sql",
    "checks/facts_match_candidates.sql",
    "checks/scores_in_range.sql",
    "checks/ranks_without_gaps.sql",
)
MAX_OFFENDERS_SHOWN = 10  # rows named in a failed check's message


class DataQualityError(Exception):
    """Raised when a data quality check finds offending rows."""


def ensure_schema() -> list[str]:
    """Apply pending schema migrations; return their names."""
    conn = warehouse.connect()
    try:
        applied = warehouse.migrate(conn)
    finally:
        conn.close()
    log.info("Schema up to date; %d migration(s) applied now", len(applied))
    return applied


def resolve_run(context: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve the run's settings from its params, the environment and its dates."""
    from airflow.sdk.exceptions import AirflowFailException

    dag_run = context["dag_run"]
    try:
        run = cfg.resolve(
            context["params"],
            os.environ,
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            logical_date=dag_run.logical_date,
            run_after=dag_run.run_after,
        )
    except ValueError as exc:  # a setting is wrong: retrying cannot help
        raise AirflowFailException(f"invalid run settings: {exc}") from None
    log.info(
        "Run %s for %s: languages %s, render %s, %d repositories each%s",
        run.run_id, run.snapshot_date, ", ".join(run.languages) or "none",
        "on" if run.include_render else "off", run.repo_limit,
        " (dev mode)" if run.dev_mode else "",
    )  # fmt: skip
    return run.to_xcom()


def _github_client(run_id: str | None = None) -> Any:
    """Build the client of the ``trender_github`` connection with the rate-limit policy."""
    from trender.github.ratelimit import GitHubRateLimitPolicy
    from trender.hooks.github import TrenderGitHubHook

    return TrenderGitHubHook(GITHUB_CONN_ID).get_client(
        run_id=run_id, rate_limit_policy=GitHubRateLimitPolicy()
    )


def _store_fetch(
    run: RunSettings, rows: list[dict], pages: list[dict], metrics: dict, stats: dict
) -> dict[str, Any]:
    conn = warehouse.connect()
    try:
        warehouse.write_search_pages(conn, pages)
        warehouse.write_raw_repos(conn, rows)
    finally:
        conn.close()
    return {**metrics, "search_pages": len(pages), "api": stats}


def fetch_language_repos(
    run_xcom: Mapping[str, Any], language: str, context: Mapping[str, Any]
) -> dict[str, Any]:
    """Search one language, fetch READMEs, store the raw rows; return the step's metrics."""
    run = RunSettings.from_xcom(run_xcom)
    previous = collect.previous_readmes_reader(run.snapshot_date)
    with _github_client(run.run_id) as client:
        rows, pages, metrics = collect.fetch_language(client, run, language, previous)
        metrics["auth"] = client.auth_status()
        result = _store_fetch(run, rows, pages, metrics, client.report())
    trace.record_metrics(context, result, label=language)
    return result


def fetch_render_repos(run_xcom: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Find render projects, fetch READMEs, store the raw rows; return the step's metrics."""
    run = RunSettings.from_xcom(run_xcom)
    previous = collect.previous_readmes_reader(run.snapshot_date)
    with _github_client(run.run_id) as client:
        rows, pages, metrics = collect.fetch_render(client, run, previous)
        metrics["auth"] = client.auth_status()
        result = _store_fetch(run, rows, pages, metrics, client.report())
    trace.record_metrics(context, result, label="render")
    return result


def batch_label(batch: Mapping[str, Any]) -> str:
    """Return a batch's map label, such as ``Python 11-20``."""
    name = cfg.CATEGORY_LABELS.get(batch["category"], batch["category"])
    return f"{name} {batch['first']}-{batch['last']}"


def require_run(run_xcom: Mapping[str, Any] | None, step: str) -> RunSettings:
    """Return the run's settings, or skip the step when resolve_run did not produce them."""
    if not run_xcom:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"{step} skipped: resolve_run did not finish (see its log)")
    return RunSettings.from_xcom(run_xcom)


def plan_batches(run_xcom: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Split the run's fetched repositories into batches for validation."""
    run = require_run(run_xcom, "plan_batches")
    conn = warehouse.connect()
    try:
        batches = warehouse.plan_batches(conn, run.run_id, cfg.BATCH_SIZE)
    finally:
        conn.close()
    for batch in batches:
        batch["label"] = batch_label(batch)
    log.info(
        "Planned %d batches over %d repositories",
        len(batches), sum(len(batch["repo_ids"]) for batch in batches),
    )  # fmt: skip
    return batches


def analyze_repo_batch(
    run_xcom: Mapping[str, Any], batch: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate one batch into staging with one write; bad repositories are skipped, counted."""
    run = RunSettings.from_xcom(run_xcom)
    conn = warehouse.connect()
    try:
        raw_rows = warehouse.read_raw_batch(conn, run.run_id, batch["category"], batch["repo_ids"])
        staged, errors, metrics = validate.analyze_batch(
            raw_rows, run_id=run.run_id, snapshot_date=run.snapshot_date
        )
        missing = len(batch["repo_ids"]) - len(raw_rows)
        if missing:
            log.warning("%d repositories of batch %s have no raw row", missing, batch["label"])
        warehouse.write_staging(conn, staged, errors)
    finally:
        conn.close()
    metrics = {**metrics, "raw_rows_missing": missing}
    log.info(
        "Batch %s: %d validated, %d skipped",
        batch["label"], metrics["repos_validated"], metrics["repos_skipped"],
    )  # fmt: skip
    trace.record_metrics(context, metrics, label=batch["label"])
    return metrics


def sql_params(run: RunSettings) -> dict[str, Any]:
    """Return the bound parameters every load SQL file takes."""
    return {
        "snapshot_date": run.snapshot_date,
        "run_id": run.run_id,
        "per_language_limit": cfg.CANDIDATES_PER_LANGUAGE,
    }


def check_warehouse(run_xcom: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Run the data quality checks; fail naming the offending rows."""
    run = RunSettings.from_xcom(run_xcom)
    failures = []
    conn = warehouse.connect()
    try:
        for name in CHECK_FILES:
            offenders = warehouse.run_sql_file(conn, name, sql_params(run))
            if offenders:
                shown = "; ".join(
                    ", ".join(f"{key}={value}" for key, value in row.items())
                    for row in offenders[:MAX_OFFENDERS_SHOWN]
                )
                failures.append(f"{name} found {len(offenders)} offending row(s): {shown}")
        (loaded,) = warehouse.run_sql_file(conn, "report/day_summary.sql", sql_params(run))
    finally:
        conn.close()
    metrics = {
        "checks_run": len(CHECK_FILES),
        "checks_failed": len(failures),
        **{key: int(value) for key, value in loaded.items()},
    }
    trace.record_metrics(context, metrics, label="checks")
    if failures:
        for failure in failures:
            log.error("Data quality check failed: %s", failure)
        raise DataQualityError(" | ".join(failures))
    log.info(
        "All %d data quality checks passed for %s: %d candidates, %d facts, %d dimension "
        "versions opened, %d repositories tracked",
        len(CHECK_FILES), run.snapshot_date, metrics["candidates"], metrics["facts"],
        metrics["versions_opened"], metrics["current_repositories"],
    )  # fmt: skip
    return metrics


def cleanup_old_data(
    run_xcom: Mapping[str, Any] | None,
    context: Mapping[str, Any],
    *,
    dry_run: bool | None = None,
) -> dict[str, Any]:
    """
    Apply the retention policy and return the deleted counts; a failure is logged, not raised.

    A dry run (the ``retention_dry_run`` param, or ``dry_run=True``) counts what would go.
    """
    run = require_run(run_xcom, "cleanup_old_data")
    if dry_run is None:
        dry_run = run.retention_dry_run
    params = {"snapshot_date": run.snapshot_date, "dry_run": dry_run, **RETENTION_DAYS}
    try:
        conn = warehouse.connect()
        try:
            (counts,) = warehouse.run_sql_file(conn, "cleanup/retention.sql", params)
        finally:
            conn.close()
    except Exception as exc:  # retention must never fail the run
        log.warning("Retention cleanup failed and was skipped: %s: %s", type(exc).__name__, exc)
        stats = {"error": f"{type(exc).__name__}: {exc}"[:300], "dry_run": dry_run}
    else:
        stats = {**{table: int(count) for table, count in counts.items()}, "dry_run": dry_run}
        log.info("Retention %s: %s", "would delete" if dry_run else "deleted", stats)
    trace.record_metrics(context, stats, label="cleanup")
    return stats


def _instances(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    ti = context["ti"]
    dag_run = context["dag_run"]
    crumbs = {
        (crumb["task_id"], crumb["map_index"]): dict(crumb)
        for crumb in ti.get_task_breadcrumbs(dag_id=dag_run.dag_id, run_id=dag_run.run_id)
    }
    states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id]).get(
        dag_run.run_id, {}
    )
    task_ids = sorted(context["dag"].task_ids, key=len, reverse=True)
    for key, state in states.items():
        task_id, map_index = key, -1
        if key not in context["dag"].task_ids:
            for candidate in task_ids:
                suffix = key[len(candidate) + 1 :]
                if key.startswith(candidate + "_") and suffix.isdigit():
                    task_id, map_index = candidate, int(suffix)
                    break
        crumbs.setdefault((task_id, map_index), {"task_id": task_id, "map_index": map_index})
        crumbs[(task_id, map_index)]["state"] = state
    own = (ti.task_id, -1)
    crumbs[own] = {**crumbs.get(own, {"task_id": ti.task_id, "map_index": -1}), "state": "running"}
    return list(crumbs.values())


def record_run(
    run_xcom: Mapping[str, Any] | None, cleanup_stats: Mapping[str, Any] | None, context: Mapping
) -> tuple[dict[str, Any], list[str]]:
    """Store the run tree and summary in ``fact_workflow_runs``; return it and the failed tasks."""
    dag_run = context["dag_run"]
    if run_xcom:
        run = RunSettings.from_xcom(run_xcom)
    else:  # resolve_run itself failed: record what is known
        run = cfg.resolve(
            {}, {}, dag_id=dag_run.dag_id, run_id=dag_run.run_id,
            logical_date=dag_run.logical_date, run_after=dag_run.run_after,
        )  # fmt: skip

    instances = _instances(context)
    conn = warehouse.connect()
    try:
        spans = trace.read_spans(conn, run.run_id)
        dag = context["dag"]
        order = trace.topological_order(
            {task.task_id: task.upstream_task_ids for task in dag.tasks}
        )
        tasks = trace.build_task_tree(order, instances, spans)
        # The first task's start: dag.test() dates the DAG run's start by its logical date.
        started_at = min(
            (span["started_at"] for span in spans if span["started_at"]),
            default=dag_run.start_date,
        )
        completed_at = dt.datetime.now(dt.UTC)
        execution_time = (completed_at - started_at).total_seconds() if started_at else 0.0
        required = [node for node in tasks if node["task_id"] not in OPTIONAL_TASKS]
        # The tasks that failed themselves; those that never ran because of them follow.
        failed = sorted({node["task_id"] for node in required if node["state"] == "failed"})
        blocked = any(node["state"] in trace.FAILED_STATES for node in required)
        repos_processed = sum(
            instance["metrics"].get("repos_validated", 0)
            for node in tasks
            if node["task_id"] == "analyze_repo_batch"
            for instance in node.get("instances", [node])
        )
        success = not failed and not blocked
        summary = {
            "repos_processed": repos_processed,
            "execution_time": round(execution_time, 3),
            "cleanup_stats": dict(cleanup_stats or {}),
            "trace_id": run.trace_id,
            "success": success,
            "api_requests": api_cost(tasks),
        }
        tree = {
            "name": dag_run.dag_id,
            "run_id": run.run_id,
            "trace_id": run.trace_id,
            "snapshot_date": run.snapshot_date.isoformat(),
            "started_at": started_at.isoformat() if started_at else None,
            "completed_at": completed_at.isoformat(),
            "status": "success" if success else "failed",
            "failed_tasks": failed,
            "children": tasks,
        }
        _store_run(conn, run, summary, tree, started_at, completed_at)
    finally:
        conn.close()
    log.info(
        "Run %s %s: %d repositories processed in %.1fs%s",
        run.run_id, "succeeded" if success else "failed", repos_processed, execution_time,
        f"; failed tasks: {', '.join(failed)}" if failed else "",
    )  # fmt: skip
    return summary, failed


def api_cost(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the fetch tasks' GitHub requests: charged per rate-limit resource, and free 304s."""
    charged: dict[str, int] = {"core": 0, "search": 0, "code_search": 0}
    free = 0
    for node in tasks:
        if node["task_id"] not in ("fetch_language_repos", "fetch_render_repos"):
            continue
        for entry in node.get("instances", [node]):
            api = entry.get("metrics", {}).get("api", {})
            for resource, count in api.get("charged", api.get("requests", {})).items():
                charged[resource] = charged.get(resource, 0) + count
            free += sum(api.get("free", {}).get("not_modified", {}).values())
    return {"charged": charged, "not_modified_free": free}


def _store_run(
    conn: Any,
    run: RunSettings,
    summary: Mapping[str, Any],
    tree: Mapping[str, Any],
    started_at: dt.datetime | None,
    completed_at: dt.datetime,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            insert into fact_workflow_runs (
                run_id, dag_id, trace_id, snapshot_date, started_at, completed_at, status,
                success, repos_processed, execution_time, cleanup_stats, summary, task_tree
            )
            values (
                %(run_id)s, %(dag_id)s, %(trace_id)s, %(snapshot_date)s, %(started_at)s,
                %(completed_at)s, %(status)s, %(success)s, %(repos_processed)s,
                %(execution_time)s, %(cleanup_stats)s::jsonb, %(summary)s::jsonb,
                %(task_tree)s::jsonb
            )
            on conflict (run_id) do update set
                completed_at = excluded.completed_at,
                status = excluded.status,
                success = excluded.success,
                repos_processed = excluded.repos_processed,
                execution_time = excluded.execution_time,
                cleanup_stats = excluded.cleanup_stats,
                summary = excluded.summary,
                task_tree = excluded.task_tree
            """,
            {
                "run_id": run.run_id,
                "dag_id": run.dag_id,
                "trace_id": run.trace_id,
                "snapshot_date": run.snapshot_date,
                "started_at": started_at,
                "completed_at": completed_at,
                "status": tree["status"],
                "success": summary["success"],
                "repos_processed": summary["repos_processed"],
                "execution_time": summary["execution_time"],
                "cleanup_stats": json.dumps(summary["cleanup_stats"]),
                "summary": json.dumps(summary),
                "task_tree": json.dumps(tree, default=str),
            },
        )
    conn.commit()
