"""PostgreSQL access for the raw and staging layers, and a runner for the project's SQL files."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlparse

from trender.text import strip_nul

log = logging.getLogger(__name__)

WAREHOUSE_CONN_ID = "trender_postgres"
# Numbered migrations (schema/NNN_name.sql) apply once each, in order, and are recorded in
# schema_migrations; repeatable files are re-applied after every migration run.
MIGRATION_PATTERN = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
REPEATABLE_SCHEMA_FILES = ("schema/views.sql",)
MIGRATIONS_LOCK_KEY = "trender.schema_migrations"


def sql_dir() -> Path:
    """
    Return the folder holding the project's SQL files, the first of three places that exists.

    1. ``$TRENDER_SQL_DIR``, when set.
    2. ``include/sql`` beside the ``plugins/`` folder holding this package: a checkout, docker
       compose and Astronomer all keep the project's ``include/`` there.
    3. ``<dags_folder>/trender_sql``, where ``make mwaa-bundle`` puts the SQL, since only the DAGs
       folder and ``plugins.zip`` reach an MWAA environment. The DAGs folder is
       ``$AIRFLOW__CORE__DAGS_FOLDER``, else Airflow's ``[core] dags_folder``.

    :raises FileNotFoundError: when none of them is a folder, naming every place searched.
    """
    override_env = "TRENDER_SQL_DIR"
    dags_folder_env = "AIRFLOW__CORE__DAGS_FOLDER"
    bundled_name = "trender_sql"  # the folder scripts/mwaa_bundle.py writes into dags/

    searched: list[Path] = []
    override = os.environ.get(override_env)
    if override:
        searched.append(Path(override).expanduser())
    searched.append(Path(__file__).resolve().parents[2] / "include" / "sql")
    for candidate in searched:
        if candidate.is_dir():
            return candidate

    dags_folder = os.environ.get(dags_folder_env)
    if not dags_folder:
        from airflow.configuration import conf

        dags_folder = conf.get("core", "dags_folder")
    candidate = Path(dags_folder).expanduser() / bundled_name
    if candidate.is_dir():
        return candidate
    searched.append(candidate)
    raise FileNotFoundError(
        "Trender's SQL folder was not found; searched, in order: "
        + ", ".join(str(path) for path in searched)
        + f". Set {override_env}, or deploy include/sql beside plugins/, or put the SQL in "
        f"<dags_folder>/{bundled_name} (make mwaa-bundle does)."
    )


def connect(conn_id: str = WAREHOUSE_CONN_ID) -> Any:
    """Open a DB-API connection to the warehouse through the Airflow connection."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id).get_conn()


def read_sql(name: str) -> str:
    """Return the text of a SQL file, by its path relative to ``include/sql``."""
    return (sql_dir() / name).read_text(encoding="utf-8")


def split_statements(sql: str) -> list[str]:
    """Split a SQL file into statements, dropping comment-only pieces."""
    statements = []
    for statement in sqlparse.split(sql):
        if sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip():
            statements.append(statement)
    return statements


def run_sql_file(conn: Any, name: str, params: Mapping[str, Any] | None = None) -> list[dict]:
    """
    Run a SQL file's statements in one transaction; return the last statement's rows as dicts.

    Statements run one by one because server-side parameter binding takes one statement at a
    time; the transaction still covers the whole file.
    """
    rows: list[dict] = []
    try:
        with conn.cursor() as cur:
            for statement in split_statements(read_sql(name)):
                cur.execute(statement, dict(params or {}) if "%(" in statement else None)
                rows = _fetch_dicts(cur)
    except Exception:
        conn.rollback()
        raise
    conn.commit()
    return rows


def migration_files() -> list[tuple[int, str]]:
    """Return the numbered migrations as (version, path relative to include/sql), in order."""
    found = []
    for path in (sql_dir() / "schema").iterdir():
        match = MIGRATION_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), f"schema/{path.name}"))
    found.sort()
    versions = [version for version, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two schema migrations share a version number: {found}")
    return found


def migrate(conn: Any) -> list[str]:
    """
    Bring the warehouse schema up to date; return the migrations applied now.

    Each pending migration runs in its own transaction together with its record in
    ``schema_migrations``. A session advisory lock keeps concurrent runs from racing.
    """
    applied_now: list[str] = []
    with conn.cursor() as cur:
        cur.execute("select pg_advisory_lock(hashtext(%s))", (MIGRATIONS_LOCK_KEY,))
        conn.commit()
        try:
            cur.execute(
                """
                create table if not exists schema_migrations (
                    version     integer     primary key,
                    name        text        not null,
                    checksum    text        not null,
                    applied_at  timestamptz not null default now()
                )
                """
            )
            cur.execute("select version, name, checksum from schema_migrations")
            applied = {version: (name, checksum) for version, name, checksum in cur.fetchall()}
            conn.commit()
            for version, name in migration_files():
                text = read_sql(name)
                checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
                if version in applied:
                    if applied[version][1] != checksum:
                        log.warning(
                            "Migration %s changed after it was applied; it is not re-run", name
                        )
                    continue
                try:
                    for statement in split_statements(text):
                        cur.execute(statement)
                    cur.execute(
                        "insert into schema_migrations (version, name, checksum) "
                        "values (%s, %s, %s)",
                        (version, name, checksum),
                    )
                except Exception:
                    conn.rollback()
                    raise
                conn.commit()
                applied_now.append(name)
                log.info("Applied schema migration %s", name)
            for name in REPEATABLE_SCHEMA_FILES:
                run_sql_file(conn, name)
        finally:
            cur.execute("select pg_advisory_unlock(hashtext(%s))", (MIGRATIONS_LOCK_KEY,))
            conn.commit()
    return applied_now


def _fetch_dicts(cur: Any) -> list[dict]:
    if cur.description is None:
        return []
    names = [column[0] for column in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def last_per_key(rows: Iterable[Mapping[str, Any]], key: Sequence[str]) -> list[Mapping]:
    """
    Keep one row per key, the last given, in first-seen order.

    One upsert statement cannot touch the same row twice, and a repository can legitimately
    arrive twice (search pages shift while GitHub re-ranks): the last copy wins, always.
    """
    kept: dict[tuple, Mapping[str, Any]] = {}
    for row in rows:
        kept[tuple(row.get(column) for column in key)] = row
    return list(kept.values())


def _json_param(rows: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps(strip_nul(list(rows)), ensure_ascii=False, default=str)


def write_raw_repos(conn: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    """
    Store fetched repositories in ``raw_github_repos`` with one statement.

    Rows are keyed by (snapshot_date, category, repo_id): a retried task or a rerun of the day
    replaces the rows written before, so nothing is ever duplicated.
    """
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            """
            insert into raw_github_repos (
                run_id, snapshot_date, category, repo_id, full_name, search_query, payload,
                readme_path, readme_text, readme_sha, readme_size, readme_etag, readme_status,
                readme_note, readme_original_bytes, readme_truncated
            )
            select
                r.run_id, r.snapshot_date, r.category, r.repo_id, r.full_name, r.search_query,
                r.payload, r.readme_path, r.readme_text, r.readme_sha, r.readme_size,
                r.readme_etag, r.readme_status, r.readme_note, r.readme_original_bytes,
                coalesce(r.readme_truncated, false)
            from jsonb_to_recordset(%s::jsonb) as r (
                run_id text, snapshot_date date, category text, repo_id bigint, full_name text,
                search_query text, payload jsonb, readme_path text, readme_text text,
                readme_sha text, readme_size integer, readme_etag text, readme_status text,
                readme_note text, readme_original_bytes integer, readme_truncated boolean
            )
            on conflict (snapshot_date, category, repo_id) do update set
                run_id = excluded.run_id,
                full_name = excluded.full_name,
                search_query = excluded.search_query,
                payload = excluded.payload,
                readme_path = excluded.readme_path,
                readme_text = excluded.readme_text,
                readme_sha = excluded.readme_sha,
                readme_size = excluded.readme_size,
                readme_etag = excluded.readme_etag,
                readme_status = excluded.readme_status,
                readme_note = excluded.readme_note,
                readme_original_bytes = excluded.readme_original_bytes,
                readme_truncated = excluded.readme_truncated,
                fetched_at = now()
            """,
            (_json_param(last_per_key(rows, ("snapshot_date", "category", "repo_id"))),),
        )
        written = cur.rowcount
    conn.commit()
    return written


def write_search_pages(conn: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    """Record every search page requested in ``raw_github_searches`` with one statement."""
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            """
            insert into raw_github_searches (
                run_id, snapshot_date, category, search_type, query, page, total_count,
                incomplete_results, item_count
            )
            select
                r.run_id, r.snapshot_date, r.category, r.search_type, r.query, r.page,
                r.total_count, r.incomplete_results, r.item_count
            from jsonb_to_recordset(%s::jsonb) as r (
                run_id text, snapshot_date date, category text, search_type text, query text,
                page integer, total_count integer, incomplete_results boolean, item_count integer
            )
            on conflict (snapshot_date, category, page) do update set
                run_id = excluded.run_id,
                search_type = excluded.search_type,
                query = excluded.query,
                total_count = excluded.total_count,
                incomplete_results = excluded.incomplete_results,
                item_count = excluded.item_count,
                fetched_at = now()
            """,
            (_json_param(rows),),
        )
        written = cur.rowcount
    conn.commit()
    return written


def plan_batches(conn: Any, run_id: str, batch_size: int) -> list[dict[str, Any]]:
    """
    Split every repository the run fetched into batches of ``batch_size`` per category.

    A repository found both by a language search and by the render search goes to ``render``.
    Batches are ordered by category and stars so the map labels read naturally.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            with owned as (
                select distinct on (repo_id)
                    repo_id,
                    category,
                    coalesce((payload ->> 'stargazers_count')::integer, 0) as stars
                from raw_github_repos
                where run_id = %s
                order by repo_id, (category = 'render') desc, category
            )

            select category, repo_id
            from owned
            order by category, stars desc, repo_id
            """,
            (run_id,),
        )
        owned = cur.fetchall()
    conn.commit()

    by_category: dict[str, list[int]] = {}
    for category, repo_id in owned:
        by_category.setdefault(category, []).append(repo_id)
    batches = []
    for category, repo_ids in by_category.items():
        for start in range(0, len(repo_ids), batch_size):
            batches.append(
                {
                    "category": category,
                    "first": start + 1,
                    "last": start + len(repo_ids[start : start + batch_size]),
                    "repo_ids": repo_ids[start : start + batch_size],
                }
            )
    return batches


def read_raw_batch(conn: Any, run_id: str, category: str, repo_ids: Sequence[int]) -> list[dict]:
    """Return the raw rows of one batch."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select repo_id, full_name, category, snapshot_date, payload, readme_path,
                   readme_text, readme_status, readme_truncated
            from raw_github_repos
            where run_id = %s
              and category = %s
              and repo_id = any(%s)
            order by repo_id
            """,
            (run_id, category, list(repo_ids)),
        )
        rows = _fetch_dicts(cur)
    conn.commit()
    return rows


_STAGING_COLUMNS = (
    "snapshot_date", "repo_id", "run_id", "category", "full_name", "owner_login", "repo_name",
    "description", "homepage", "primary_language", "topics", "license_spdx", "is_archived",
    "is_fork", "default_branch", "stars", "forks", "open_issues", "created_at", "updated_at",
    "pushed_at", "readme_path", "readme_text", "readme_hash", "readme_truncated",
)  # fmt: skip

# Built once from the column list above: structure only, every value is a bound parameter.
_STAGING_UPSERT = """
    insert into stg_repos_validated ({columns})
    select {selected}
    from jsonb_populate_recordset(null::stg_repos_validated, %s::jsonb)
    on conflict (snapshot_date, repo_id) do update set {updates}, validated_at = now()
""".format(
    columns=", ".join(_STAGING_COLUMNS),
    selected=", ".join(_STAGING_COLUMNS).replace(
        "readme_truncated", "coalesce(readme_truncated, false)"
    ),
    updates=", ".join(
        f"{column} = excluded.{column}"
        for column in _STAGING_COLUMNS
        if column not in ("snapshot_date", "repo_id")
    ),
)


def write_staging(
    conn: Any, rows: Sequence[Mapping[str, Any]], errors: Sequence[Mapping[str, Any]]
) -> None:
    """
    Store one batch's validated rows and validation errors in one transaction.

    Rows are keyed by (snapshot_date, repo_id): a rerun of the day replaces them.
    """
    with conn.cursor() as cur:
        if rows:
            keyed = last_per_key(rows, ("snapshot_date", "repo_id"))
            cur.execute(_STAGING_UPSERT, (_json_param(keyed),))
        if errors:
            cur.execute(
                """
                insert into stg_validation_errors (
                    run_id, snapshot_date, category, repo_id, full_name, reason
                )
                select r.run_id, r.snapshot_date, r.category, r.repo_id, r.full_name, r.reason
                from jsonb_to_recordset(%s::jsonb) as r (
                    run_id text, snapshot_date date, category text, repo_id bigint,
                    full_name text, reason text
                )
                on conflict (snapshot_date, category, repo_id) do update set
                    run_id = excluded.run_id,
                    full_name = excluded.full_name,
                    reason = excluded.reason,
                    recorded_at = now()
                """,
                (_json_param(last_per_key(errors, ("snapshot_date", "category", "repo_id"))),),
            )
    conn.commit()


# The encrypted credential table: one row per credential, values already Fernet-encrypted.
_OAUTH_TOKEN_COLUMNS = (
    "credential_name", "auth_type", "access_token_encrypted", "refresh_token_encrypted",
    "access_expires_at", "refresh_expires_at", "scope", "key_fingerprint", "updated_by_run",
)  # fmt: skip
_OAUTH_TOKEN_SELECT = """
    select credential_name, auth_type, access_token_encrypted, refresh_token_encrypted,
           access_expires_at, refresh_expires_at, scope, key_fingerprint, created_at,
           updated_at, updated_by_run
    from github_oauth_tokens
"""
_OAUTH_TOKEN_VALUES = """
    values (
        %(credential_name)s, %(auth_type)s, %(access_token_encrypted)s,
        %(refresh_token_encrypted)s, %(access_expires_at)s, %(refresh_expires_at)s, %(scope)s,
        %(key_fingerprint)s, %(updated_by_run)s
    )
"""
_OAUTH_TOKEN_INSERT = (
    "insert into github_oauth_tokens (" + ", ".join(_OAUTH_TOKEN_COLUMNS) + ")"
    + _OAUTH_TOKEN_VALUES
)  # fmt: skip
_OAUTH_TOKEN_UPDATES = ", ".join(
    f"{column} = excluded.{column}" for column in _OAUTH_TOKEN_COLUMNS[1:]
)


def _oauth_params(row: Mapping[str, Any]) -> dict[str, Any]:
    return {column: row.get(column) for column in _OAUTH_TOKEN_COLUMNS}


def read_oauth_token(
    conn: Any, credential_name: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    """
    Return a credential's encrypted row, or None; the caller ends the transaction.

    With ``for_update`` the row stays locked until the caller commits or rolls back.
    """
    statement = _OAUTH_TOKEN_SELECT + " where credential_name = %(name)s"
    if for_update:
        statement += " for update"
    with conn.cursor() as cur:
        cur.execute(statement, {"name": credential_name})
        rows = _fetch_dicts(cur)
    return rows[0] if rows else None


def read_all_oauth_tokens(conn: Any, *, for_update: bool = False) -> list[dict[str, Any]]:
    """Return every credential row in name order; the caller ends the transaction."""
    statement = _OAUTH_TOKEN_SELECT + " order by credential_name"
    if for_update:
        statement += " for update"
    with conn.cursor() as cur:
        cur.execute(statement)
        return _fetch_dicts(cur)


def insert_oauth_token(conn: Any, row: Mapping[str, Any]) -> bool:
    """Insert a credential row unless one exists; return whether it was inserted (no commit)."""
    with conn.cursor() as cur:
        cur.execute(
            _OAUTH_TOKEN_INSERT + " on conflict (credential_name) do nothing", _oauth_params(row)
        )
        return cur.rowcount == 1


def upsert_oauth_token(conn: Any, row: Mapping[str, Any]) -> None:
    """Insert or replace a credential row (no commit)."""
    with conn.cursor() as cur:
        cur.execute(
            _OAUTH_TOKEN_INSERT
            + " on conflict (credential_name) do update set "
            + _OAUTH_TOKEN_UPDATES
            + ", updated_at = now()",
            _oauth_params(row),
        )


def read_previous_readmes(
    conn: Any, repo_ids: Sequence[int], before_date: Any
) -> dict[int, dict[str, Any]]:
    """
    Return, per repository, the README stored on its latest snapshot day before ``before_date``.

    Only rows with an ETag and a README count: they are what a conditional request can reuse.
    """
    if not repo_ids:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            """
            select distinct on (repo_id)
                repo_id, snapshot_date, readme_etag, readme_path, readme_text, readme_sha,
                readme_size, readme_note, readme_original_bytes, readme_truncated
            from raw_github_repos
            where repo_id = any(%s)
              and snapshot_date < %s
              and readme_etag is not null
              and readme_status in ('ok', 'not_modified')
            order by repo_id, snapshot_date desc, fetched_at desc
            """,
            (list(repo_ids), before_date),
        )
        rows = _fetch_dicts(cur)
    conn.commit()
    return {row["repo_id"]: row for row in rows}
