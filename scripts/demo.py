"""
Run ``trender_daily`` once with ``airflow dags test`` and print the day's ranking.

GitHub is the bundled replay snapshot unless ``AIRFLOW_CONN_TRENDER_GITHUB`` names a real API;
the warehouse is ``TRENDER_DATABASE_URL`` (or ``AIRFLOW_CONN_TRENDER_POSTGRES``), else an
embedded PostgreSQL. Airflow's own metadata lives in SQLite under ``.local/airflow``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "plugins"))
sys.path.insert(0, str(PROJECT_ROOT / "scripts"))

import localenv  # noqa: E402

from trender.github.replay import ReplayServer  # noqa: E402

AIRFLOW_HOME = PROJECT_ROOT / ".local" / "airflow"
DAG_ID = "trender_daily"
TOP_N = 10
CATEGORY_ORDER = ("python", "typescript", "go", "render")
CATEGORY_TITLES = {"python": "Python", "typescript": "TypeScript", "go": "Go", "render": "render"}


def airflow_env(warehouse_url: str, github_url: str | None) -> dict[str, str]:
    """Return the environment for the Airflow CLI: project folders, SQLite, connections."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW_CONN_TRENDER_POSTGRES": os.environ.get(
            "AIRFLOW_CONN_TRENDER_POSTGRES", warehouse_url
        ),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT / "plugins"), os.environ.get("PYTHONPATH")])
        ),
    }
    if github_url:
        # The replay server answers code search without a token; GitHub itself does not.
        env["AIRFLOW_CONN_TRENDER_GITHUB"] = json.dumps(
            {"conn_type": "http", "host": github_url, "extra": {"anonymous_code_search": True}}
        )
    return env


def migrate_metadata(env: dict[str, str]) -> None:
    """Create or upgrade the Airflow metadata database once per Airflow version."""
    import airflow

    stamp = AIRFLOW_HOME / ".migrated"
    if stamp.exists() and stamp.read_text().strip() == airflow.__version__:
        return
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    print("Preparing the Airflow metadata database (first run only) ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stamp.write_text(airflow.__version__)


@contextlib.contextmanager
def github_endpoint(as_of: dt.date) -> Iterator[str | None]:
    """Yield the replay server's URL, or None when a real GitHub connection is configured."""
    if os.environ.get("AIRFLOW_CONN_TRENDER_GITHUB"):
        yield None
        return
    with ReplayServer(as_of=as_of) as server:
        yield server.url


def print_ranking(warehouse_url: str) -> bool:
    """Print the top repositories of each category and the run summary; return its success."""
    with psycopg.connect(warehouse_url) as conn:
        latest = conn.execute(
            """
            select run_id, snapshot_date, summary
            from fact_workflow_runs
            where dag_id = %s
            order by completed_at desc
            limit 1
            """,
            (DAG_ID,),
        ).fetchone()
        if latest is None:
            print("No run summary was recorded.", file=sys.stderr)
            return False
        _, snapshot_date, summary = latest
        rows = conn.execute(
            """
            select f.category, f.rank_in_language, d.full_name, f.stars, f.age_days,
                   f.momentum_score
            from fact_repo_snapshots as f
            join dim_repositories as d on d.repo_key = f.repo_key
            where f.snapshot_date = %s and f.rank_in_language <= %s
            order by f.category, f.rank_in_language
            """,
            (snapshot_date, TOP_N),
        ).fetchall()

    by_category: dict[str, list[tuple]] = {}
    for category, *rest in rows:
        by_category.setdefault(category, []).append(tuple(rest))
    print(f"\nTrender ranking for {snapshot_date}")
    for category in CATEGORY_ORDER:
        entries = by_category.get(category, [])
        print(f"\n{CATEGORY_TITLES[category]} (top {TOP_N})")
        print(f"{'rank':>4}  {'repository':<44} {'stars':>7} {'age':>5} {'momentum':>9}")
        if not entries:
            print("      (no repositories)")
        for rank, full_name, stars, age_days, momentum in entries:
            print(f"{rank:>4}  {full_name:<44} {stars:>7} {age_days:>4}d {momentum:>9.4f}")
    print("\nRun summary")
    print(json.dumps(summary, indent=2, sort_keys=True))
    return bool(summary.get("success"))


def main() -> int:
    """Run the demo."""
    logical_date = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with (
        localenv.warehouse() as warehouse_url,
        github_endpoint(logical_date.date()) as github_url,
    ):
        env = airflow_env(warehouse_url, github_url)
        migrate_metadata(env)
        print(f"Running {DAG_ID} for {logical_date.date()} against "
              f"{github_url or 'the configured GitHub connection'}", flush=True)  # fmt: skip
        test = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, logical_date.isoformat()],
            env=env,
            check=False,
        )
        if test.returncode != 0:
            print(f"airflow dags test exited with {test.returncode}", file=sys.stderr)
            return test.returncode
        succeeded = print_ranking(warehouse_url)
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
