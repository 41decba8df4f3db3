"""
Benchmark the warehouse loads at 1k, 10k and 100k repositories over three days of changes.

Synthetic staging rows are generated in SQL; each day then runs the same SQL files the DAG
runs (candidates, SCD Type 2 dimension, facts), reads every dashboard view and applies
retention. Every repository is a candidate here (the DAG keeps the top 50 per language), so the
dimension and fact loads see the full size. Prints seconds and rows per second per stage and
writes JSON to ``bench-results/``.

Usage: ``python scripts/bench_warehouse.py [--sizes 1000,10000,100000]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import platform
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "plugins"))
sys.path.insert(0, str(PROJECT_ROOT / "scripts"))

import localenv  # noqa: E402

from trender import warehouse  # noqa: E402

FIRST_DAY = dt.date(2026, 12, 1)
DAYS = 3
TARGET_SECONDS_100K = 10.0  # the whole daily load of 100k repositories
RESULTS_DIR = PROJECT_ROOT / "bench-results"
VIEWS = (
    "analytics_trending_now",
    "analytics_render_showcase",
    "analytics_language_trends",
    "analytics_repo_history",
)

# One statement: n repositories for a day. Stars grow every day; every 50th repository gets a
# new description each day and every 200th is renamed on day 2, so the dimension sees changes.
GENERATE_STAGING = """
insert into stg_repos_validated (
    snapshot_date, repo_id, run_id, category, full_name, owner_login, repo_name, description,
    homepage, primary_language, topics, license_spdx, is_archived, is_fork, default_branch,
    stars, forks, open_issues, created_at, updated_at, pushed_at, readme_path, readme_text,
    readme_hash
)
select
    %(day)s::date,
    i,
    %(run_id)s,
    (array['python', 'typescript', 'go', 'render'])[1 + i %% 4],
    case when i %% 200 = 0 and %(day_index)s >= 2 then 'renamed' else 'owner' end
        || (i %% 997) || '/repo' || i,
    case when i %% 200 = 0 and %(day_index)s >= 2 then 'renamed' else 'owner' end || (i %% 997),
    'repo' || i,
    case when i %% 50 = 0 then 'day ' || %(day_index)s || ' description' else 'stable' end,
    null,
    (array['Python', 'TypeScript', 'Go', 'JavaScript'])[1 + i %% 4],
    '["bench"]'::jsonb,
    'MIT',
    false,
    false,
    'main',
    (i * 7919) %% 5000 + %(day_index)s * (i %% 13),
    i %% 100,
    i %% 40,
    timestamptz '2026-06-01' + make_interval(days => i %% 179),
    now(),
    now(),
    'README.md',
    null,
    md5(i::text)
from generate_series(1, %(n)s) as i
"""


@contextlib.contextmanager
def bench_database(server_url: str) -> Iterator[str]:
    """Create a scratch database on the server and drop it afterwards."""
    name = f"trender_bench_{uuid.uuid4().hex[:8]}"
    admin = server_url.rpartition("/")[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield server_url.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def timed(
    stages: dict[str, float], name: str, action: Callable[..., object], *args: object
) -> object:
    """Run action(*args) and add its wall time to stages[name]."""
    started = time.perf_counter()
    result = action(*args)
    stages[name] = stages.get(name, 0.0) + time.perf_counter() - started
    return result


def bench_size(server_url: str, n: int) -> dict:
    """Load three days of n repositories; return per-stage seconds of the last day and totals."""
    per_day = []
    with bench_database(server_url) as url, psycopg.connect(url) as conn:
        warehouse.migrate(conn)
        for index in range(DAYS):
            day = FIRST_DAY + dt.timedelta(days=index)
            run_id = f"bench-{day}"
            params = {"snapshot_date": day, "run_id": run_id, "per_language_limit": n}
            stages: dict[str, float] = {}
            gen = {"day": day, "run_id": run_id, "day_index": index, "n": n}
            timed(
                stages, "staging (generate)", lambda gen=gen: _execute(conn, GENERATE_STAGING, gen)
            )
            for stage, name in (
                ("candidates", "load/candidates.sql"),
                ("scd2", "load/dim_repositories.sql"),
                ("facts", "load/fact_repo_snapshots.sql"),
            ):
                timed(stages, stage, warehouse.run_sql_file, conn, name, params)
            timed(stages, "views", lambda: [_count(conn, view) for view in VIEWS])
            retention = {"snapshot_date": day, "dry_run": False, "raw_days": 7,
                         "staging_days": 7, "analytics_days": 30}  # fmt: skip
            timed(
                stages,
                "retention",
                warehouse.run_sql_file,
                conn,
                "cleanup/retention.sql",
                retention,
            )
            per_day.append(stages)
        (versions,) = conn.execute("select count(*) from dim_repositories").fetchone()
        (facts,) = conn.execute("select count(*) from fact_repo_snapshots").fetchone()
    load_stages = ("candidates", "scd2", "facts", "views", "retention")
    last = per_day[-1]
    return {
        "repositories": n,
        "last_day_seconds": {stage: round(seconds, 4) for stage, seconds in last.items()},
        "last_day_load_seconds": round(sum(last[s] for s in load_stages), 4),
        "mean_day_load_seconds": round(
            sum(sum(day[s] for s in load_stages) for day in per_day) / DAYS, 4
        ),
        "dimension_versions": versions,
        "facts": facts,
    }


def _execute(conn: psycopg.Connection, statement: str, params: dict) -> None:
    conn.execute(statement, params)
    conn.commit()


def _count(conn: psycopg.Connection, view: str) -> int:
    (count,) = conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(view))
    ).fetchone()
    conn.commit()
    return count


def print_table(results: list[dict]) -> None:
    """Print seconds and rows per second per stage for every size."""
    stages = ("staging (generate)", "candidates", "scd2", "facts", "views", "retention")
    header = f"{'stage':<20}" + "".join(f"{r['repositories']:>22,}" for r in results)
    print("\nWarehouse load, last of three days (seconds | repositories per second)")
    print(header)
    for stage in stages:
        cells = ""
        for result in results:
            seconds = result["last_day_seconds"][stage]
            rate = result["repositories"] / seconds if seconds else float("inf")
            cells += f"{seconds:>10.3f}s {rate:>10,.0f}/s"
        print(f"{stage:<20}{cells}")
    whole = ""
    for result in results:
        seconds = result["last_day_load_seconds"]
        whole += f"{seconds:>10.3f}s {result['repositories'] / seconds:>10,.0f}/s"
    print(f"{'whole load':<20}{whole}")
    by_size = {r["repositories"]: r for r in results}
    if 10_000 in by_size and 100_000 in by_size:
        growth = (
            by_size[100_000]["last_day_load_seconds"] / by_size[10_000]["last_day_load_seconds"]
        )
        print(f"\n10k -> 100k: x{growth:.1f} time for x10 repositories "
              f"({'linear or better' if growth <= 10 else 'worse than linear'})")  # fmt: skip
    if 100_000 in by_size:
        seconds = by_size[100_000]["last_day_load_seconds"]
        verdict = (
            "met"
            if seconds <= TARGET_SECONDS_100K
            else f"missed by {seconds - TARGET_SECONDS_100K:.2f}s"
        )
        print(f"100k target ({TARGET_SECONDS_100K:.0f}s): {verdict}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    with localenv.warehouse() as server_url:
        results = []
        for n in sizes:
            print(f"benchmarking {n:,} repositories over {DAYS} days ...", flush=True)
            results.append(bench_size(server_url, n))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "benchmark": "warehouse",
        "measured_at": stamp,
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "results": results,
    }  # fmt: skip
    path = RESULTS_DIR / f"warehouse-{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    print_table(results)
    print(f"\nresults: {path.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
