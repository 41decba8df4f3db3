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
DEMO_LOG = PROJECT_ROOT / ".local" / "demo.log"
MAX_ERRORS_SHOWN = 15
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
        print(f"\n{CATEGORY_TITLES[category]} (top {len(entries)})")
        print(f"{'rank':>4}  {'repository':<44} {'stars':>7} {'age':>5} {'momentum':>9}")
        if not entries:
            print("      (no repositories)")
        for rank, full_name, stars, age_days, momentum in entries:
            print(f"{rank:>4}  {full_name:<44} {stars:>7} {age_days:>4}d {momentum:>9.4f}")
    print("\nRun summary")
    print(json.dumps(summary, indent=2, sort_keys=True))
    return bool(summary.get("success"))


def preflight(warehouse_url: str) -> str | None:
    """Return what is wrong before Airflow starts (settings, warehouse), or None."""
    from trender import settings as cfg

    try:
        cfg.resolve({}, os.environ, dag_id=DAG_ID, run_id="preflight",
                    logical_date=None, run_after=dt.datetime.now(dt.UTC))  # fmt: skip
    except ValueError as exc:
        return f"{exc}. Fix or unset the environment variable."
    try:
        psycopg.connect(warehouse_url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return (
            f"cannot reach the warehouse {localenv.redact(warehouse_url)}: {reason}. Set "
            "TRENDER_DATABASE_URL to a database that exists, or unset it to use the embedded "
            "PostgreSQL."
        )
    return None


def run_dags_test(env: dict[str, str], logical_date: dt.datetime) -> tuple[int, list[str]]:
    """Run airflow dags test, echoing its output to the terminal and to DEMO_LOG."""
    errors: list[str] = []
    DEMO_LOG.parent.mkdir(parents=True, exist_ok=True)
    with DEMO_LOG.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, logical_date.isoformat()],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            log_file.write(line)
            if "[error" in line and len(errors) < MAX_ERRORS_SHOWN:
                errors.append(line.strip())
        return process.wait(), errors


def main() -> int:
    """Run the demo."""
    logical_date = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        with (
            localenv.warehouse() as warehouse_url,
            github_endpoint(logical_date.date()) as github_url,
        ):
            problem = preflight(warehouse_url)
            if problem:
                print(f"make demo: {problem}", file=sys.stderr)
                return 2
            env = airflow_env(warehouse_url, github_url)
            migrate_metadata(env)
            print(f"Running {DAG_ID} for {logical_date.date()} against "
                  f"{github_url or 'the configured GitHub connection'}", flush=True)  # fmt: skip
            returncode, errors = run_dags_test(env, logical_date)
            if returncode != 0:
                print(f"\nairflow dags test exited with {returncode}. First errors:",
                      file=sys.stderr)  # fmt: skip
                for line in errors or ["(none logged)"]:
                    print(f"  {line}", file=sys.stderr)
                print(f"Full log: {DEMO_LOG.relative_to(PROJECT_ROOT)}", file=sys.stderr)
                return returncode
            succeeded = print_ranking(warehouse_url)
    except localenv.LocalEnvError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 2
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
