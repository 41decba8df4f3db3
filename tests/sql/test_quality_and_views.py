"""Data quality gates name offending rows; dashboard views over given rows."""

from __future__ import annotations

import datetime as dt
import types

import psycopg
import pytest

from tests.sql.test_retention import load_day
from tests.sql.test_scoring import staged
from trender import pipeline
from trender.settings import RunSettings

TODAY = dt.date(2026, 12, 3)
YESTERDAY = TODAY - dt.timedelta(days=1)


def run_xcom() -> dict:
    return RunSettings(
        dag_id="trender_daily", run_id="checks-run", trace_id="c" * 32, snapshot_date=TODAY,
        dev_mode=False, repo_limit=25, languages=("Python",), include_render=False,
    ).to_xcom()  # fmt: skip


def context() -> dict:
    ti = types.SimpleNamespace(task_id="check", map_index=-1, try_number=1, start_date=None)
    return {"ti": ti, "run_id": "checks-run"}


@pytest.fixture
def loaded(db: psycopg.Connection) -> psycopg.Connection:
    load_day(db, YESTERDAY, [staged(1, "python", 100, 10), staged(2, "go", 50, 40)])
    load_day(
        db,
        TODAY,
        [
            staged(1, "python", 160, 10, full_name="owner1/renamed"),
            staged(2, "go", 52, 40),
            staged(3, "render", 300, 100),
        ],
    )
    return db


def test_checks_pass_on_a_clean_load(loaded: psycopg.Connection) -> None:
    assert pipeline.check_warehouse(run_xcom(), context()) == {
        "checks_run": 5,
        "checks_failed": 0,
        "candidates": 3,
        "facts": 3,
        "versions_opened": 2,  # the rename of repository 1 and first sight of repository 3
        "current_repositories": 3,
    }


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            "update fact_repo_snapshots set momentum_score = 1.5 where repo_id = 2 "
            "and snapshot_date = '2026-12-03'",
            r"scores_in_range.sql found 1 offending row\(s\): repo_id=2, .*momentum_score=1.5",
        ),
        (
            "update fact_repo_snapshots set rank_in_language = 3 where repo_id = 2 "
            "and snapshot_date = '2026-12-03'",
            r"ranks_without_gaps.sql found 1 offending row\(s\): ranking=go, facts=1",
        ),
        (
            "delete from fact_repo_snapshots where repo_id = 3",
            r"facts_match_candidates.sql found 1 offending row\(s\): repo_id=3, "
            r"problem=candidate without fact",
        ),
        (
            "alter table dim_repositories drop constraint dim_repositories_validity_check; "
            "update dim_repositories set valid_to = '2026-12-05' "
            "where repo_id = 1 and not is_current",
            r"no_overlapping_validity.sql found 1 offending row\(s\): repo_id=1",
        ),
        (
            "drop index dim_repositories_one_current_idx; "
            "alter table dim_repositories drop constraint dim_repositories_current_check; "
            "update dim_repositories set is_current = true where repo_id = 1",
            r"one_current_version.sql found 1 offending row\(s\): repo_id=1, current_versions=2",
        ),
    ],
    ids=["score-out-of-range", "rank-gap", "missing-fact", "overlap", "two-current"],
)
def test_a_failed_check_names_the_offending_rows(
    loaded: psycopg.Connection, damage: str, message: str
) -> None:
    for statement in damage.split("; "):
        loaded.execute(statement)
    loaded.commit()
    with pytest.raises(pipeline.DataQualityError, match=message):
        pipeline.check_warehouse(run_xcom(), context())


def test_trending_now_shows_the_latest_day_with_current_names(loaded: psycopg.Connection) -> None:
    rows = loaded.execute(
        "select rank_overall, category, full_name, stars, star_velocity, momentum_score "
        "from analytics_trending_now order by rank_overall"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (1, "python", "owner1/renamed", 160, 60.0),
        (2, "go", "owner2/repo2", 52, 2.0),
        (3, "render", "owner3/repo3", 300, None),
    ]
    # go: 0.7 * 0.5 ** (26 / 60) + 0.3; render: 0.7 * 0.5 ** (86 / 60) + 0.3 (each its max)
    assert [float(r[5]) for r in rows] == [1.0, 0.8184, 0.5592]


def test_render_showcase_lists_only_render_projects(loaded: psycopg.Connection) -> None:
    assert loaded.execute(
        "select rank_in_language, full_name from analytics_render_showcase"
    ).fetchall() == [(1, "owner3/repo3")]


def test_language_trends_aggregate_per_day_and_category(loaded: psycopg.Connection) -> None:
    rows = loaded.execute(
        "select snapshot_date, category, repositories, total_stars, avg_star_velocity "
        "from analytics_language_trends order by snapshot_date, category"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3], None if r[4] is None else float(r[4])) for r in rows] == [
        (YESTERDAY, "go", 1, 50, None),
        (YESTERDAY, "python", 1, 100, None),
        (TODAY, "go", 1, 52, 2.0),
        (TODAY, "python", 1, 160, 60.0),
        (TODAY, "render", 1, 300, None),
    ]


def test_repository_history_keeps_the_name_of_each_day(loaded: psycopg.Connection) -> None:
    assert loaded.execute(
        "select snapshot_date, full_name, stars, star_velocity from analytics_repo_history "
        "where repo_id = 1 order by snapshot_date"
    ).fetchall() == [(YESTERDAY, "owner1/repo1", 100, None), (TODAY, "owner1/renamed", 160, 60.0)]
