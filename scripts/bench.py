"""
Benchmark a full daily run against its network lower bound.

The replay server adds a fixed latency to every response (``--latency``, default 100 ms; or
GitHub-like jitter with ``--jitter``). The bench runs ``airflow dags test trender_daily`` on the
bundled snapshot twice: a first day, then the next day, when most READMEs are unchanged and
come back as free 304s. It reports:

- the wall time, and per task the time inside Trender's code (the task's own span) against the
  time Airflow took around it;
- the least network time the same requests could take, given the client's concurrency (the
  fetch tasks' requests, in the rounds its thread pools allow) and GitHub's per-resource limits,
  and the ratio of Trender's in-task fetch time to it;
- requests per rate-limit resource on both days, and the saving on the second;
- the warehouse scale table (``scripts/bench_warehouse.py``), unless ``--skip-warehouse``.

Results go to ``bench-results/`` as JSON and are printed as a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "plugins"))
sys.path.insert(0, str(PROJECT_ROOT / "scripts"))

import bench_warehouse  # noqa: E402
import demo  # noqa: E402
import localenv  # noqa: E402

from trender import collect  # noqa: E402
from trender.github.client import GitHubClient  # noqa: E402
from trender.github.replay import ReplayServer  # noqa: E402

DAG_ID = "trender_daily"
RESULTS_DIR = PROJECT_ROOT / "bench-results"
FETCH_TASKS = ("fetch_language_repos", "fetch_render_repos")
TARGETS = {
    "in_task_over_lower_bound": 1.5,  # Trender's fetch time at most 1.5 x the network bound
    "second_day_core_share": 0.30,  # the next day spends at most 30 % of the core requests
    "dags_test_wall_seconds": 25.0,  # the whole airflow dags test run
}
# Log-normal sigma giving a median of the set latency and a p95 near twice it, as GitHub's
# API latencies look from one region.
GITHUB_LIKE_JITTER = 0.4
SEARCH_PER_MINUTE = 30
CODE_SEARCH_PER_MINUTE = 10


def lower_bound(latency: float, requests: dict[str, dict[str, int]], parallel: bool) -> float:
    """
    Return the least network time of the fetch tasks' requests.

    Per task: its searches run one page after another, then its repository fetches and its
    README fetches each run in rounds of the client's worker count. Under ``airflow dags test``
    the tasks run one after another; under an executor they may overlap.
    """
    readme_workers = GitHubClient.__init__.__kwdefaults__["readme_workers"]
    per_task = []
    for counts in requests.values():
        rounds = counts.get("search_pages", 0)
        rounds += math.ceil(counts.get("repository_fetches", 0) / collect.REPOSITORY_WORKERS)
        rounds += math.ceil(counts.get("readme_fetches", 0) / readme_workers)
        per_task.append(rounds * latency)
    searches = sum(c.get("search_requests", 0) for c in requests.values())
    code = sum(c.get("code_search_requests", 0) for c in requests.values())
    # Budgets only bind when a run needs more than a minute's allowance.
    budget_floor = max(
        60.0 * (searches // SEARCH_PER_MINUTE), 60.0 * (code // CODE_SEARCH_PER_MINUTE)
    )
    network = max(per_task, default=0.0) if parallel else sum(per_task)
    return max(network, budget_floor)


def task_timings(warehouse_url: str, airflow_db: Path, run_id: str) -> list[dict]:
    """Return per task instance: Airflow's duration and the span inside Trender's code."""
    with psycopg.connect(warehouse_url) as conn:
        spans = {
            (task_id, map_index): (started, ended, label, metrics)
            for task_id, map_index, started, ended, label, metrics in conn.execute(
                "select task_id, map_index, started_at, ended_at, label, metrics "
                "from ops_task_spans where run_id = %s",
                (run_id,),
            )
        }
    with sqlite3.connect(airflow_db) as meta:
        rows = meta.execute(
            "select task_id, map_index, start_date, end_date, duration from task_instance "
            "where dag_id = ? and run_id = ? order by start_date",
            (DAG_ID, run_id),
        ).fetchall()
    timings = []
    for task_id, map_index, _, _, duration in rows:
        started, ended, label, metrics = spans.get((task_id, map_index), (None, None, None, {}))
        # Fetch steps time their own work (search, repositories, READMEs); other tasks are
        # timed by their span, from the start callback to the success callback.
        in_task = metrics.get("seconds")
        if in_task is None and started and ended:
            in_task = (ended - started).total_seconds()
        timings.append(
            {
                "task": task_id if map_index < 0 else f"{task_id}[{label or map_index}]",
                "task_id": task_id,
                "airflow_seconds": round(duration or 0.0, 3),
                "in_task_seconds": round(in_task, 3) if in_task is not None else None,
                "metrics": metrics,
            }
        )
    return timings


def fetch_requests(timings: list[dict]) -> dict[str, dict[str, int]]:
    """Return each fetch task's request counts from its metrics."""
    requests = {}
    for timing in timings:
        if timing["task_id"] not in FETCH_TASKS:
            continue
        metrics = timing["metrics"]
        api = metrics.get("api", {}).get("requests", {})
        requests[timing["task"]] = {
            "search_pages": metrics.get("search_pages", 0),
            "repository_fetches": metrics.get("repositories_seen", 0),
            "readme_fetches": metrics.get("repos_fetched", 0),
            "search_requests": api.get("search", 0),
            "code_search_requests": api.get("code_search", 0),
        }
    return requests


def run_day(
    env: dict[str, str], warehouse_url: str, server: ReplayServer, day: dt.date, index: int
) -> dict:
    """Run one day with airflow dags test and collect its numbers."""
    server.set_day(index)
    server.set_as_of(day)
    server.reset_log()
    logical = dt.datetime.combine(day, dt.time(14), dt.UTC)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, logical.isoformat()],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    with psycopg.connect(warehouse_url) as conn:
        run_id, success = conn.execute(
            "select run_id, success from fact_workflow_runs where snapshot_date = %s "
            "order by completed_at desc limit 1",
            (day,),
        ).fetchone()
    timings = task_timings(warehouse_url, demo.AIRFLOW_HOME / "airflow.db", run_id)
    log = server.requests
    per_resource: dict[str, int] = {"core": 0, "search": 0, "code_search": 0}
    not_modified = 0
    for request in log:
        if request.status == 304:
            not_modified += 1
            continue
        if request.path.startswith("/search/code"):
            per_resource["code_search"] += 1
        elif request.path.startswith("/search/"):
            per_resource["search"] += 1
        else:
            per_resource["core"] += 1
    return {
        "day": day.isoformat(),
        "success": success,
        "wall_seconds": round(wall, 3),
        "tasks": timings,
        "requests_charged": per_resource,
        "not_modified_free": not_modified,
        "fetch_requests": fetch_requests(timings),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per response")
    parser.add_argument(
        "--jitter",
        type=float,
        nargs="?",
        const=GITHUB_LIKE_JITTER,
        default=0.0,
        help=f"log-normal sigma of each latency (alone: {GITHUB_LIKE_JITTER}, GitHub-like)",
    )
    parser.add_argument("--skip-warehouse", action="store_true")
    parser.add_argument(
        "--executor",
        choices=("dags-test", "local"),
        default="dags-test",
        help="dags-test: two days under airflow dags test; local: one run on a real scheduler "
        "with the LocalExecutor (api-server, scheduler and dag-processor on loopback)",
    )
    args = parser.parse_args(argv)
    if args.executor == "local":
        return bench_local_executor(args.latency, args.jitter)

    first_day = dt.datetime.now(dt.UTC).date()
    days = [first_day, first_day + dt.timedelta(days=1)]
    with localenv.warehouse() as server_url, bench_warehouse.bench_database(server_url) as url:
        server = ReplayServer(
            as_of=first_day, latency_seconds=args.latency, latency_jitter=args.jitter
        )
        with server:
            env = demo.airflow_env(url, server.url)
            env["AIRFLOW_CONN_TRENDER_POSTGRES"] = url
            demo.migrate_metadata(env)
            results = [run_day(env, url, server, day, index) for index, day in enumerate(days)]
        warehouse = None if args.skip_warehouse else [
            bench_warehouse.bench_size(server_url, n) for n in (1_000, 10_000, 100_000)
        ]  # fmt: skip

    first = results[0]
    in_task_fetch = sum(
        t["in_task_seconds"] or 0.0 for t in first["tasks"] if t["task_id"] in FETCH_TASKS
    )
    bound_sequential = lower_bound(args.latency, first["fetch_requests"], parallel=False)
    bound_parallel = lower_bound(args.latency, first["fetch_requests"], parallel=True)
    core_share = (
        results[1]["requests_charged"]["core"] / first["requests_charged"]["core"]
        if first["requests_charged"]["core"]
        else 0.0
    )
    summary = {
        "latency_seconds": args.latency,
        "jitter": args.jitter,
        "dags_test_wall_seconds": first["wall_seconds"],
        "in_task_fetch_seconds": round(in_task_fetch, 3),
        "network_lower_bound_seconds": round(bound_sequential, 3),
        "network_lower_bound_parallel_seconds": round(bound_parallel, 3),
        "in_task_over_lower_bound": round(in_task_fetch / bound_sequential, 3)
        if bound_sequential
        else None,
        "second_day_core_share": round(core_share, 3),
        "second_day_saving_percent": round(100 * (1 - core_share), 1),
    }
    report = {
        "benchmark": "pipeline",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "summary": summary,
        "targets": TARGETS,
        "days": results,
        "warehouse": warehouse,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"pipeline-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print_report(report)
    print(f"\nresults: {path.relative_to(PROJECT_ROOT)}")
    return 0


def bench_local_executor(latency: float, jitter: float) -> int:
    """Run the DAG once on a real scheduler with the LocalExecutor and report per-task times."""
    import tempfile

    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.scheduler import stack as scheduler_stack

    with (
        localenv.warehouse() as server_url,
        tempfile.TemporaryDirectory(prefix="trender-bench-") as work,
        scheduler_stack.airflow_stack(server_url, Path(work)) as running,
    ):
        running.replay.latency_seconds = latency
        running.replay.latency_jitter = jitter
        started = time.perf_counter()
        dag_run = scheduler_stack.trigger_and_wait(running)
        wall = time.perf_counter() - started
        instances = scheduler_stack.task_instances(running, dag_run["dag_run_id"])
        with psycopg.connect(running.warehouse_url) as conn:
            metrics = {
                (task_id, map_index): (label, values)
                for task_id, map_index, label, values in conn.execute(
                    "select task_id, map_index, label, metrics from ops_task_spans "
                    "where run_id = %s",
                    (dag_run["dag_run_id"],),
                )
            }
    timings = []
    for instance in sorted(instances, key=lambda i: i["start_date"] or ""):
        label, values = metrics.get((instance["task_id"], instance["map_index"]), (None, {}))
        name = instance["task_id"]
        if instance["map_index"] >= 0:
            name = f"{name}[{label or instance['map_index']}]"
        timings.append(
            {
                "task": name,
                "task_id": instance["task_id"],
                "airflow_seconds": round(instance["duration"] or 0.0, 3),
                "in_task_seconds": values.get("seconds"),
                "metrics": values,
            }
        )
    requests = fetch_requests(timings)
    bound = lower_bound(latency, requests, parallel=True)
    in_task = max(
        (t["in_task_seconds"] or 0.0 for t in timings if t["task_id"] in FETCH_TASKS), default=0.0
    )
    report = {
        "benchmark": "pipeline-local-executor",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "state": dag_run["state"],
        "latency_seconds": latency,
        "jitter": jitter,
        "run_seconds": round(wall, 3),
        "slowest_fetch_in_task_seconds": in_task,
        "network_lower_bound_parallel_seconds": round(bound, 3),
        "tasks": timings,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"pipeline-local-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nFull run on a real scheduler (LocalExecutor), {latency * 1000:.0f} ms latency")
    print(f"{'task':<44} {'in task':>9} {'airflow':>9}")
    for timing in timings:
        shown = timing["in_task_seconds"]
        cell = f"{shown:>8.3f}s" if shown is not None else f"{'-':>9}"
        print(f"{timing['task']:<44} {cell} {timing['airflow_seconds']:>8.3f}s")
    print(f"\nrun state {dag_run['state']}, trigger to finish {wall:.2f}s")
    print(f"slowest fetch in task {in_task:.3f}s; network lower bound with the fetches "
          f"overlapping {bound:.3f}s")  # fmt: skip
    print(f"\nresults: {path.relative_to(PROJECT_ROOT)}")
    return 0 if dag_run["state"] == "success" else 1


def print_report(report: dict) -> None:
    """Print the per-task table, the lower bound comparison and the request budget."""
    summary = report["summary"]
    first = report["days"][0]
    jitter = f" with jitter sigma {summary['jitter']}" if summary["jitter"] else ""
    print(
        f"\nFull run, airflow dags test, {summary['latency_seconds'] * 1000:.0f} ms latency{jitter}"
    )
    print(f"{'task':<44} {'in task':>9} {'airflow':>9}")
    for timing in first["tasks"]:
        in_task = timing["in_task_seconds"]
        shown = f"{in_task:>8.3f}s" if in_task is not None else f"{'-':>9}"
        print(f"{timing['task']:<44} {shown} {timing['airflow_seconds']:>8.3f}s")
    print(f"\nwall time of airflow dags test: {summary['dags_test_wall_seconds']:.2f}s")
    print(f"fetch tasks in task:            {summary['in_task_fetch_seconds']:.3f}s")
    print(f"network lower bound:            {summary['network_lower_bound_seconds']:.3f}s "
          f"(tasks one after another; {summary['network_lower_bound_parallel_seconds']:.3f}s "
          "if they overlapped)")  # fmt: skip
    print(f"ratio:                          {summary['in_task_over_lower_bound']}")
    day1, day2 = report["days"]
    print("\nrequests charged per resource   first day  next day")
    for resource in ("core", "search", "code_search"):
        print(f"  {resource:<29} {day1['requests_charged'][resource]:>9} "
              f"{day2['requests_charged'][resource]:>9}")  # fmt: skip
    print(f"  {'304 (free)':<29} {day1['not_modified_free']:>9} {day2['not_modified_free']:>9}")
    print(f"next day spends {100 * summary['second_day_core_share']:.1f} % of the first day's "
          f"core requests (saving {summary['second_day_saving_percent']} %)")  # fmt: skip
    print("\ntargets")
    checks = {
        "in_task_over_lower_bound": summary["in_task_over_lower_bound"],
        "second_day_core_share": summary["second_day_core_share"],
        "dags_test_wall_seconds": summary["dags_test_wall_seconds"],
    }
    for name, value in checks.items():
        target = report["targets"][name]
        verdict = "met" if value is not None and value <= target else (
            f"missed by {value - target:.3f}" if value is not None else "not measured"
        )  # fmt: skip
        print(f"  {name:<28} {value} <= {target}: {verdict}")
    if report["warehouse"]:
        bench_warehouse.print_table(report["warehouse"])


if __name__ == "__main__":
    sys.exit(main())
