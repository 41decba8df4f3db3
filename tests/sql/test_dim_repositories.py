"""SCD Type 2 rules of dim_repositories, each on real PostgreSQL with given rows."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import psycopg
import pytest

from tests.sql.test_scoring import staged
from trender import warehouse

DAY1 = dt.date(2026, 12, 1)
DAY2 = dt.date(2026, 12, 2)
DAY3 = dt.date(2026, 12, 3)


def load(conn: object, day: dt.date, rows: list[dict]) -> None:
    """Stage rows for a day and run the candidate and dimension loads."""
    run_id = f"run-{day.isoformat()}"
    warehouse.write_staging(
        conn, [{**row, "snapshot_date": day.isoformat(), "run_id": run_id} for row in rows], []
    )
    params = {"snapshot_date": day, "run_id": run_id, "per_language_limit": 50}
    warehouse.run_sql_file(conn, "load/candidates.sql", params)
    warehouse.run_sql_file(conn, "load/dim_repositories.sql", params)


def versions(conn: object, repo_id: int | None = None) -> list[tuple]:
    """Return (repo_id, full_name, description, valid_from, valid_to, is_current) rows."""
    return conn.execute(
        """
        select repo_id, full_name, description, valid_from, valid_to, is_current
        from dim_repositories
        where %(repo_id)s::bigint is null or repo_id = %(repo_id)s
        order by repo_id, valid_from
        """,
        {"repo_id": repo_id},
    ).fetchall()


def repo(repo_id: int = 1, **changes: object) -> dict:
    return {**staged(repo_id, "python", stars=100, age_days=20), **changes}


def test_first_sight_opens_a_current_version(db: psycopg.Connection) -> None:
    load(db, DAY1, [repo()])
    assert versions(db) == [(1, "owner1/repo1", None, DAY1, None, True)]


def test_unchanged_input_writes_nothing(db: psycopg.Connection) -> None:
    load(db, DAY1, [repo()])
    before = db.execute("select repo_key, xmin::text from dim_repositories").fetchall()
    load(db, DAY2, [repo(stars=150)])  # stars live in the facts, not the dimension
    after = db.execute("select repo_key, xmin::text from dim_repositories").fetchall()
    assert after == before


def test_a_change_closes_the_current_version_and_opens_the_next(db: psycopg.Connection) -> None:
    load(db, DAY1, [repo()])
    load(db, DAY2, [repo(description="now with docs")])
    assert versions(db) == [
        (1, "owner1/repo1", None, DAY1, DAY2, False),
        (1, "owner1/repo1", "now with docs", DAY2, None, True),
    ]


def test_a_rename_is_a_new_version_of_the_same_repository(db: psycopg.Connection) -> None:
    load(db, DAY1, [repo()])
    load(
        db,
        DAY2,
        [repo(full_name="new-owner/renamed", owner_login="new-owner", repo_name="renamed")],
    )
    assert versions(db) == [
        (1, "owner1/repo1", None, DAY1, DAY2, False),
        (1, "new-owner/renamed", None, DAY2, None, True),
    ]
    (distinct_ids,) = db.execute("select count(distinct repo_id) from dim_repositories").fetchone()
    assert distinct_ids == 1


def test_absence_is_not_deletion(db: psycopg.Connection) -> None:
    load(db, DAY1, [repo(1), repo(2)])
    load(db, DAY2, [repo(1)])
    assert versions(db, 2) == [(2, "owner2/repo2", None, DAY1, None, True)]


def test_a_repository_returning_after_retirement_gets_a_new_current_version(
    db: psycopg.Connection,
) -> None:
    load(db, DAY1, [repo()])
    db.execute("delete from dim_repositories")  # retention retired every version
    db.commit()
    load(db, DAY3, [repo(description="back again")])
    assert versions(db) == [(1, "owner1/repo1", "back again", DAY3, None, True)]


def test_duplicate_keys_in_one_load_become_one_deterministic_change(
    db: psycopg.Connection,
) -> None:
    load(db, DAY1, [repo()])
    load(db, DAY2, [repo(description="first copy"), repo(description="second copy")])
    assert versions(db) == [
        (1, "owner1/repo1", None, DAY1, DAY2, False),
        (1, "owner1/repo1", "second copy", DAY2, None, True),
    ]


def test_a_rerun_of_the_same_day_corrects_that_days_version(db: psycopg.Connection) -> None:
    load(db, DAY1, [repo()])
    load(db, DAY2, [repo(description="draft")])
    load(db, DAY2, [repo(description="final")])
    assert versions(db) == [
        (1, "owner1/repo1", None, DAY1, DAY2, False),
        (1, "owner1/repo1", "final", DAY2, None, True),
    ]


def test_a_backfill_with_other_attributes_adds_a_closed_earlier_version(
    db: psycopg.Connection,
) -> None:
    load(db, DAY2, [repo()])
    load(db, DAY3, [repo(description="later")])
    later = versions(db)
    load(db, DAY1, [repo(description="older text")])
    assert versions(db) == [(1, "owner1/repo1", "older text", DAY1, DAY2, False), *later]


def test_a_backfill_with_the_same_attributes_starts_the_first_version_earlier(
    db: psycopg.Connection,
) -> None:
    load(db, DAY2, [repo()])
    load(db, DAY1, [repo()])
    assert versions(db) == [(1, "owner1/repo1", None, DAY1, None, True)]


def test_a_date_an_existing_version_covers_is_left_as_recorded(db: psycopg.Connection) -> None:
    load(db, DAY1, [repo()])
    load(db, DAY3, [repo(description="c")])
    load(db, DAY2, [repo(description="rewritten history")])
    assert versions(db) == [
        (1, "owner1/repo1", None, DAY1, DAY3, False),
        (1, "owner1/repo1", "c", DAY3, None, True),
    ]


def test_racing_loads_leave_one_current_version_and_neither_fails(
    db: psycopg.Connection, warehouse_url: str
) -> None:
    warehouse.write_staging(
        db, [{**repo(), "snapshot_date": DAY1.isoformat(), "run_id": "race"}], []
    )
    params = {"snapshot_date": DAY1, "run_id": "race", "per_language_limit": 50}
    warehouse.run_sql_file(db, "load/candidates.sql", params)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def race() -> None:
        try:
            with psycopg.connect(warehouse_url) as conn:
                start.wait()
                warehouse.run_sql_file(conn, "load/dim_repositories.sql", params)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert versions(db) == [(1, "owner1/repo1", None, DAY1, None, True)]


def test_the_partial_unique_index_refuses_a_second_current_version(
    db: psycopg.Connection,
) -> None:
    load(db, DAY1, [repo()])
    with pytest.raises(psycopg.errors.UniqueViolation, match="dim_repositories_one_current_idx"):
        db.execute(
            """
            insert into dim_repositories (
                repo_id, full_name, category, is_archived, is_fork, created_at,
                attributes_hash, valid_from
            )
            values (1, 'x/y', 'python', false, false, now(), 'h', %s)
            """,
            (DAY2,),
        )
    db.rollback()


def test_validity_ranges_never_overlap_and_leave_no_gaps(db: psycopg.Connection) -> None:
    load(db, DAY1, [repo()])
    load(db, DAY2, [repo(description="b")])
    load(db, DAY3, [repo(description="c")])
    rows = versions(db)
    assert [(r[3], r[4]) for r in rows] == [(DAY1, DAY2), (DAY2, DAY3), (DAY3, None)]
    for earlier, later in itertools.pairwise(rows):
        assert earlier[4] == later[3]
    for check in ("checks/one_current_version.sql", "checks/no_overlapping_validity.sql"):
        assert warehouse.run_sql_file(db, check, {"snapshot_date": DAY3}) == []
