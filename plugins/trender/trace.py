"""
The run tree: task spans written by each task, assembled by ``record_run``.

Airflow 3 tasks cannot query the metadata database, so every task instance writes its own span
(start, end, state, try number, label, metrics) into ``ops_task_spans`` through the callbacks
below, and ``record_run`` joins those spans with the states the Task SDK reports.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trender import warehouse

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500  # enough to read the cause; spans are not a log store
FAILED_STATES = frozenset({"failed", "upstream_failed"})


def _span_identity(context: Mapping[str, Any]) -> dict[str, Any]:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return {
        "run_id": context["run_id"],
        "task_id": ti.task_id,
        "map_index": -1 if map_index is None else map_index,
        "try_number": getattr(ti, "try_number", 1) or 1,
    }


def _upsert_span(identity: Mapping[str, Any], **fields: Any) -> None:
    columns = {
        "label": None,
        "state": None,
        "started_at": None,
        "ended_at": None,
        "metrics": None,
        "error": None,
    }
    columns.update(fields)
    conn = warehouse.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                """
                insert into ops_task_spans (
                    run_id, task_id, map_index, try_number, label, state, started_at, ended_at,
                    metrics, error
                )
                values (
                    %(run_id)s, %(task_id)s, %(map_index)s, %(try_number)s, %(label)s,
                    coalesce(%(state)s, 'running'), %(started_at)s, %(ended_at)s,
                    coalesce(%(metrics)s::jsonb, '{}'::jsonb), %(error)s
                )
                on conflict (run_id, task_id, map_index, try_number) do update set
                    label = coalesce(excluded.label, ops_task_spans.label),
                    state = coalesce(%(state)s, ops_task_spans.state),
                    started_at = coalesce(ops_task_spans.started_at, excluded.started_at),
                    ended_at = coalesce(excluded.ended_at, ops_task_spans.ended_at),
                    metrics = ops_task_spans.metrics || coalesce(%(metrics)s::jsonb, '{}'::jsonb),
                    error = coalesce(excluded.error, ops_task_spans.error)
                """,
                {
                    **identity,
                    **columns,
                    "metrics": json.dumps(columns["metrics"]) if columns["metrics"] else None,
                },
            )
        conn.commit()
    finally:
        conn.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _label(context: Mapping[str, Any]) -> str | None:
    label = getattr(context["ti"], "rendered_map_index", None)
    return str(label) if label else None


def _guarded(event: str, context: Mapping[str, Any], **fields: Any) -> None:
    started_at = getattr(context["ti"], "start_date", None)
    if started_at is None and event == "start":
        started_at = _now()
    if started_at is not None:
        fields.setdefault("started_at", started_at)
    try:
        _upsert_span(_span_identity(context), **fields)
    except Exception as exc:  # a span is observability: losing one must never fail the task
        if type(exc).__name__ == "UndefinedTable":  # first run: ensure_schema creates the table
            log.info("No span table yet for the %s span of %s", event, context["ti"].task_id)
            return
        log.warning(
            "Could not record the %s span of %s: %s: %s",
            event, context["ti"].task_id, type(exc).__name__, str(exc).splitlines()[0],
        )  # fmt: skip


def on_task_start(context: Mapping[str, Any]) -> None:
    """Record that a task instance started (``on_execute_callback``)."""
    _guarded("start", context, state="running")


def on_task_success(context: Mapping[str, Any]) -> None:
    """Record that a task instance succeeded (``on_success_callback``)."""
    _guarded("success", context, state="success", ended_at=_now(), label=_label(context))


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Record that a task instance failed, with the exception's type and message."""
    exception = context.get("exception")
    error = f"{type(exception).__name__}: {exception}"[:MAX_ERROR_LENGTH] if exception else None
    _guarded(
        "failure", context, state="failed", ended_at=_now(), error=error, label=_label(context)
    )


def on_task_retry(context: Mapping[str, Any]) -> None:
    """Record that a task instance failed and will be retried."""
    exception = context.get("exception")
    error = f"{type(exception).__name__}: {exception}"[:MAX_ERROR_LENGTH] if exception else None
    _guarded("retry", context, state="up_for_retry", ended_at=_now(), error=error)


def record_metrics(context: Mapping[str, Any], metrics: Mapping[str, Any], label: str) -> None:
    """Attach a task's metrics and map label to its span."""
    _guarded("metrics", context, metrics=dict(metrics), label=label)


def read_spans(conn: Any, run_id: str) -> list[dict[str, Any]]:
    """Return every span of a run."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select task_id, map_index, try_number, label, state, started_at, ended_at, metrics,
                   error
            from ops_task_spans
            where run_id = %s
            order by task_id, map_index, try_number
            """,
            (run_id,),
        )
        names = [column[0] for column in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.commit()
    return rows


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def topological_order(tasks: Mapping[str, Iterable[str]]) -> list[str]:
    """
    Order task ids so every task follows its upstream tasks.

    :param tasks: each task id with its upstream task ids, in the DAG's definition order, which
        breaks ties.
    """
    order: list[str] = []
    placed: set[str] = set()
    pending = {task_id: set(upstream) for task_id, upstream in tasks.items()}
    while pending:
        ready = next((t for t, upstream in pending.items() if upstream <= placed), None)
        if ready is None:  # a cycle cannot happen in a DAG; keep the rest in definition order
            order.extend(pending)
            break
        order.append(ready)
        placed.add(ready)
        del pending[ready]
    return order


def build_task_tree(
    task_order: Sequence[str],
    instances: Iterable[Mapping[str, Any]],
    spans: Iterable[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """
    Build the run tree's task nodes.

    :param task_order: task ids in the order the DAG lists them.
    :param instances: one mapping per task instance with ``task_id``, ``map_index``, ``state``
        and optionally ``duration``, as the Task SDK reports them.
    :param spans: the run's rows from ``ops_task_spans``.
    """
    tries: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for span in spans:
        tries.setdefault((span["task_id"], span["map_index"]), []).append(span)

    nodes: dict[str, dict[str, Any]] = {}
    for instance in sorted(instances, key=lambda i: (i["task_id"], i["map_index"])):
        key = (instance["task_id"], instance["map_index"])
        span_tries = sorted(tries.get(key, []), key=lambda s: s["try_number"])
        last = span_tries[-1] if span_tries else {}
        started_at = span_tries[0]["started_at"] if span_tries else None
        ended_at = last.get("ended_at")
        duration = instance.get("duration")
        if duration is None and started_at and ended_at:
            duration = (ended_at - started_at).total_seconds()
        entry = {
            "map_index": instance["map_index"],
            "label": last.get("label"),
            "state": instance.get("state") or last.get("state"),
            "try_number": last.get("try_number"),
            "started_at": _iso(started_at),
            "ended_at": _iso(ended_at),
            "duration": round(duration, 3) if duration is not None else None,
            "metrics": dict(last.get("metrics") or {}),
        }
        if last.get("error"):
            entry["error"] = last["error"]
        node = nodes.setdefault(instance["task_id"], {"task_id": instance["task_id"]})
        if instance["map_index"] >= 0:
            node.setdefault("instances", []).append(entry)
        else:
            node.update(entry)
    for node in nodes.values():
        if "instances" in node:
            states = {instance["state"] for instance in node["instances"]}
            node["state"] = next(
                (s for s in ("failed", "upstream_failed", "running") if s in states),
                "success" if states <= {"success"} else sorted(states)[0],
            )
            node["mapped"] = len(node["instances"])

    position = {task_id: index for index, task_id in enumerate(task_order)}
    return sorted(
        nodes.values(), key=lambda n: (position.get(n["task_id"], len(position)), n["task_id"])
    )
