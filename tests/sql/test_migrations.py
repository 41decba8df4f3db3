"""Schema migrations apply once each, in order, and upgrade a warehouse in place."""

from __future__ import annotations

import psycopg
import pytest

from trender import warehouse

FIRST_SCHEMA = 4  # migrations 001-004 were the first released schema


@pytest.fixture
def first_schema_db(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> psycopg.Connection:
    """Return a database at the first schema, holding a day of data written by that schema."""
    every = warehouse.migration_files()
    with monkeypatch.context() as patched:
        patched.setattr(warehouse, "migration_files", lambda: every[:FIRST_SCHEMA])
        with psycopg.connect(empty_db_url) as conn:
            warehouse.migrate(conn)
    conn = psycopg.connect(empty_db_url)
    conn.execute(
        """
        insert into raw_github_repos (run_id, snapshot_date, category, repo_id, full_name,
                                      search_query, payload, readme_text, readme_status)
        values ('r1', '2026-12-01', 'python', 7, 'a/b', 'q', '{"id": 7}', 'hello', 'ok')
        """
    )
    conn.execute(
        """
        insert into dim_repositories (repo_id, full_name, category, is_archived, is_fork,
                                      created_at, attributes_hash, valid_from)
        values (7, 'a/b', 'python', false, false, '2026-11-01', 'h', '2026-12-01')
        """
    )
    conn.commit()
    yield conn
    conn.close()


def applied(conn: psycopg.Connection) -> list[int]:
    return [v for (v,) in conn.execute("select version from schema_migrations order by 1")]


def test_a_first_schema_warehouse_upgrades_in_place_and_loses_nothing(
    first_schema_db: psycopg.Connection,
) -> None:
    assert applied(first_schema_db) == [1, 2, 3, 4]
    now_applied = warehouse.migrate(first_schema_db)
    latest = [name for _, name in warehouse.migration_files()][FIRST_SCHEMA:]
    assert now_applied == latest
    assert applied(first_schema_db) == [v for v, _ in warehouse.migration_files()]
    assert first_schema_db.execute(
        "select repo_id, full_name, readme_text, readme_truncated, readme_original_bytes "
        "from raw_github_repos"
    ).fetchall() == [(7, "a/b", "hello", False, None)]
    assert first_schema_db.execute(
        "select repo_id, full_name, is_current from dim_repositories"
    ).fetchall() == [(7, "a/b", True)]


def test_migrating_twice_applies_nothing_the_second_time(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url) as conn:
        first = warehouse.migrate(conn)
        second = warehouse.migrate(conn)
        assert first == [name for _, name in warehouse.migration_files()]
        assert second == []
        (views,) = conn.execute(
            "select count(*) from pg_views where viewname like 'analytics_%'"
        ).fetchone()
        assert views == 4


def test_a_failing_migration_is_rolled_back_and_not_recorded(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    broken = tmp_path / "schema"
    broken.mkdir()
    (broken / "001_ok.sql").write_text("create table t_ok (id int);")
    (broken / "002_broken.sql").write_text("create table t_half (id int);\nselect * from nowhere;")
    (broken / "views.sql").write_text("select 1;")
    monkeypatch.setenv("TRENDER_SQL_DIR", str(tmp_path))
    with psycopg.connect(empty_db_url) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable, match="nowhere"):
            warehouse.migrate(conn)
        assert applied(conn) == [1]
        (half,) = conn.execute("select to_regclass('t_half') is null").fetchone()
        assert half is True
