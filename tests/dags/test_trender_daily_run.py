"""End-to-end runs of trender_daily with dag.test() on real PostgreSQL and the replay server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import dag_environment
from tests.dags.dagrun import run_dag

LOGICAL_DATE = dt.datetime(2026, 12, 3, 14, tzinfo=dt.UTC)  # the replay fixture's AS_OF date
SNAPSHOT = LOGICAL_DATE.date()
DATA_TABLES = (
    "raw_github_repos",
    "raw_github_searches",
    "stg_repos_validated",
    "stg_validation_errors",
    "stg_repo_candidates",
    "dim_repositories",
    "dim_languages",
    "fact_repo_snapshots",
)
# 25 per language search and 25 render projects; quillwork-io/sieve-ledger is found by both the
# Python search and the render search, so 100 raw rows hold 99 repositories.
FULL_RUN_COUNTS = {
    "raw_github_repos": 100,
    "raw_github_searches": 4,
    "stg_repos_validated": 99,
    "stg_validation_errors": 0,
    "stg_repo_candidates": 99,
    "dim_repositories": 99,
    "dim_languages": 5,
    "fact_repo_snapshots": 99,
}

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def fresh_db(warehouse_url: str, github_conn: object) -> Iterator[psycopg.Connection]:
    """Return a connection to a warehouse of the test's own, with the replay server connected."""
    with psycopg.connect(warehouse_url) as conn:
        yield conn


def counts(db: psycopg.Connection) -> dict[str, int]:
    """Return the row count of every data table."""
    return {
        table: db.execute(f"select count(*) from {table}").fetchone()[0] for table in DATA_TABLES
    }


def fact(db: psycopg.Connection, full_name: str) -> dict:
    """Return the day's fact of a repository, with its dimension's name and category."""
    cur = db.execute(
        """
        select d.full_name, d.primary_language, f.category, f.stars, f.age_days,
               f.recency_score, f.normalized_stars, f.momentum_score, f.rank_in_language,
               f.rank_overall, f.star_velocity
        from fact_repo_snapshots as f
        join dim_repositories as d on d.repo_key = f.repo_key
        where f.snapshot_date = %s and d.full_name = %s
        """,
        (SNAPSHOT, full_name),
    )
    row = cur.fetchone()
    assert row is not None, f"{full_name} has no fact on {SNAPSHOT}"
    return dict(zip([c.name for c in cur.description], row, strict=True))


@pytest.fixture(scope="module")
def shared_run(pg_server_url: str, schema_template: str) -> Iterator[tuple[object, str]]:
    """Run the whole DAG once for SNAPSHOT, shared by the tests that only read its results."""
    with dag_environment(pg_server_url, schema_template) as (url, _server):
        yield run_dag(LOGICAL_DATE), url


@pytest.fixture
def full_run(shared_run: tuple[object, str]) -> object:
    return shared_run[0]


@pytest.fixture
def db(shared_run: tuple[object, str]) -> Iterator[psycopg.Connection]:
    with psycopg.connect(shared_run[1]) as conn:
        yield conn


def test_full_run_loads_every_layer_exactly(full_run: object, db: psycopg.Connection) -> None:
    assert full_run.state == "success"
    assert counts(db) == FULL_RUN_COUNTS
    per_category = dict(
        db.execute(
            "select category, count(*) from fact_repo_snapshots group by category"
        ).fetchall()
    )
    assert per_category == {"python": 24, "typescript": 25, "go": 25, "render": 25}
    (not_one_current,) = db.execute(
        """
        select count(*) from (
            select repo_id from dim_repositories
            group by repo_id having count(*) filter (where is_current) <> 1
        ) as offenders
        """
    ).fetchone()
    assert not_one_current == 0
    readme_states = dict(
        db.execute(
            "select readme_status, count(*) from raw_github_repos group by readme_status"
        ).fetchall()
    )
    assert readme_states == {"ok": 98, "missing": 2}


@pytest.mark.parametrize(
    ("full_name", "expected"),
    [
        # the top TypeScript repository, 9 days old: recency 1 and the category's most stars
        ("nimbus-collective/loom-kit", {"category": "typescript", "stars": 4260, "age_days": 9,
         "recency_score": 1.0, "normalized_stars": 1.0, "momentum_score": 1.0,
         "rank_in_language": 1, "rank_overall": 1}),
        # 14 days old: still full recency; 3715 of Python's maximum 4656 stars
        ("lantern-lynx/rivet-press-mini", {"category": "python", "stars": 3715, "age_days": 14,
         "recency_score": 1.0, "normalized_stars": 0.7978951890034365,
         "momentum_score": 0.9393685567010309, "rank_in_language": 1}),
        # 15 days old: recency 0.5 ** (1 / 60); 3850 of 4260 stars
        ("velvet-badger71/keel-shelf", {"category": "typescript", "stars": 3850, "age_days": 15,
         "recency_score": 0.9885140203528962, "normalized_stars": 0.903755868544601,
         "momentum_score": 0.9630865748104076, "rank_in_language": 2}),
        # 74 days old: recency exactly one half-life, 0.5
        ("driftwood-newt49/lattice-ledger", {"category": "typescript", "stars": 2755,
         "age_days": 74, "recency_score": 0.5, "normalized_stars": 0.6467136150234741,
         "momentum_score": 0.5440140845070423}),
    ],
    ids=["9-days-top", "14-days", "15-days", "74-days"],
)  # fmt: skip
def test_named_repositories_score_exactly(
    full_run: object, db: psycopg.Connection, full_name: str, expected: dict
) -> None:
    row = fact(db, full_name)
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, abs=1e-12), key
    assert row["star_velocity"] is None  # first snapshot: no earlier day to compare with


def test_repository_found_by_both_searches_belongs_to_render(
    full_run: object, db: psycopg.Connection
) -> None:
    row = fact(db, "quillwork-io/sieve-ledger")
    assert (row["category"], row["primary_language"]) == ("render", "Python")
    raw_categories = db.execute(
        """
        select category from raw_github_repos
        where full_name = 'quillwork-io/sieve-ledger' order by category
        """
    ).fetchall()
    assert raw_categories == [("python",), ("render",)]


def test_oversized_readme_is_truncated_with_its_size_recorded(
    full_run: object, db: psycopg.Connection
) -> None:
    row = db.execute(
        """
        select readme_truncated, readme_original_bytes, octet_length(readme_text)
        from raw_github_repos where full_name = 'hollow-badger/kiln-grid-core'
        """
    ).fetchone()
    assert row[0] is True
    assert row[1] == 300084
    assert row[2] <= 256 * 1024


def test_nul_characters_are_removed_before_the_warehouse(
    full_run: object, db: psycopg.Connection
) -> None:
    text, note = db.execute(
        "select readme_text, readme_note from raw_github_repos "
        "where full_name = 'sable-newt/umber-lens'"
    ).fetchone()
    assert text
    assert "\x00" not in text
    assert note == "nul characters removed"


def test_summary_and_run_tree(full_run: object, db: psycopg.Connection) -> None:
    summary, tree = db.execute("select summary, task_tree from fact_workflow_runs").fetchone()
    assert summary["success"] is True
    assert summary["repos_processed"] == 99
    assert summary["cleanup_stats"]["raw_github_repos"] == 0
    assert len(summary["trace_id"]) == 32
    assert summary["execution_time"] > 0
    # 3 searches + 75 READMEs; 1 code search + 32 repositories + 25 READMEs
    assert summary["api_requests"] == {
        "charged": {"core": 132, "search": 3, "code_search": 1},
        "not_modified_free": 0,
    }
    nodes = {node["task_id"]: node for node in tree["children"]}
    fetches = nodes["fetch_language_repos"]["instances"]
    assert [(i["label"], i["state"]) for i in fetches] == [
        ("Python", "success"),
        ("TypeScript", "success"),
        ("Go", "success"),
    ]
    batches = nodes["analyze_repo_batch"]["instances"]
    assert [i["label"] for i in batches] == [
        "Go 1-10", "Go 11-20", "Go 21-25",
        "Python 1-10", "Python 11-20", "Python 21-24",
        "render 1-10", "render 11-20", "render 21-25",
        "TypeScript 1-10", "TypeScript 11-20", "TypeScript 21-25",
    ]  # fmt: skip
    assert sum(i["metrics"]["repos_validated"] for i in batches) == 99
    assert all(i["duration"] is not None and i["try_number"] == 1 for i in batches)
    assert nodes["record_run"]["state"] == "running"
    assert tree["status"] == "success"
    assert tree["failed_tasks"] == []


def test_second_run_of_the_same_day_changes_no_count(
    warehouse_url: str, fresh_db: psycopg.Connection
) -> None:
    db = fresh_db
    assert run_dag(LOGICAL_DATE).state == "success"
    db.commit()
    first = counts(db)
    second_run = run_dag(LOGICAL_DATE + dt.timedelta(minutes=1))
    db.commit()
    assert second_run.state == "success"
    assert counts(db) == first == FULL_RUN_COUNTS
    (runs,) = db.execute("select count(*) from fact_workflow_runs").fetchone()
    assert runs == 2


def test_dev_mode_processes_exactly_five_python_repositories(
    warehouse_url: str, fresh_db: psycopg.Connection
) -> None:
    db = fresh_db
    dag_run = run_dag(LOGICAL_DATE, {"dev_mode": True})
    db.commit()
    assert dag_run.state == "success"
    assert db.execute(
        "select category, count(*) from fact_repo_snapshots group by category"
    ).fetchall() == [("python", 5)]
    summary = db.execute("select summary from fact_workflow_runs").fetchone()[0]
    assert summary["repos_processed"] == 5
    tree = db.execute("select task_tree from fact_workflow_runs").fetchone()[0]
    states = {node["task_id"]: node["state"] for node in tree["children"]}
    assert states["fetch_render_repos"] == "skipped"


def test_a_bad_repository_is_skipped_counted_and_kept(
    warehouse_url: str, fresh_db: psycopg.Connection, github_conn: object
) -> None:
    db = fresh_db
    from trender.github.replay import Fault, load_snapshot

    repos = [entry["repo"] for entry in load_snapshot(None)["repositories"]][:3]
    broken = {**repos[1], "created_at": "not a timestamp"}
    github_conn.inject(
        "/search/repositories",
        [Fault(status=200, body={"total_count": 3, "incomplete_results": False,
                                 "items": [repos[0], broken, repos[2]]})],
    )  # fmt: skip
    dag_run = run_dag(LOGICAL_DATE, {"dev_mode": True})
    db.commit()

    assert dag_run.state == "success"
    assert db.execute(
        "select repo_id, full_name, reason from stg_validation_errors"
    ).fetchall() == [
        (
            broken["id"],
            broken["full_name"],
            "created_at is not an ISO 8601 timestamp: 'not a timestamp'",
        )
    ]
    staged = [row[0] for row in db.execute("select repo_id from stg_repos_validated order by 1")]
    assert staged == sorted([repos[0]["id"], repos[2]["id"]])
    tree = db.execute("select task_tree from fact_workflow_runs").fetchone()[0]
    (batch,) = next(n for n in tree["children"] if n["task_id"] == "analyze_repo_batch")[
        "instances"
    ]
    assert batch["state"] == "success"
    assert batch["metrics"]["repos_skipped"] == 1
    assert batch["metrics"]["skip_reasons"] == {"created_at is not an ISO 8601 timestamp": 1}
