"""The m1 momentum formula, ranks and star velocity, computed by the load SQL on real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from trender import warehouse

SNAPSHOT = dt.date(2026, 12, 3)
RUN_ID = "scoring-test"
TOLERANCE = 1e-12  # PostgreSQL's pow() and Python's agree to the last bit or two


def staged(repo_id: int, category: str, stars: int, age_days: int, **extra: object) -> dict:
    """Return a staging row for a repository created age_days before SNAPSHOT."""
    created = dt.datetime.combine(SNAPSHOT - dt.timedelta(days=age_days), dt.time(9, 30), dt.UTC)
    return {
        "snapshot_date": extra.pop("snapshot_date", SNAPSHOT).isoformat(),
        "repo_id": repo_id,
        "run_id": extra.pop("run_id", RUN_ID),
        "category": category,
        "full_name": f"owner{repo_id}/repo{repo_id}",
        "owner_login": f"owner{repo_id}",
        "repo_name": f"repo{repo_id}",
        "description": None,
        "homepage": None,
        "primary_language": {"python": "Python", "go": "Go"}.get(category),
        "topics": [],
        "license_spdx": None,
        "is_archived": False,
        "is_fork": False,
        "default_branch": "main",
        "stars": stars,
        "forks": 0,
        "open_issues": 0,
        "created_at": created.isoformat(),
        "updated_at": created.isoformat(),
        "pushed_at": created.isoformat(),
        "readme_path": None,
        "readme_text": None,
        "readme_hash": None,
        **extra,
    }


def load_day(db: object, rows: list[dict], snapshot_date: dt.date = SNAPSHOT) -> None:
    """Stage rows and run the candidate, dimension and fact loads for one day."""
    warehouse.write_staging(db, rows, [])
    params = {"snapshot_date": snapshot_date, "run_id": RUN_ID, "per_language_limit": 50}
    for name in (
        "load/candidates.sql",
        "load/dim_repositories.sql",
        "load/fact_repo_snapshots.sql",
    ):
        warehouse.run_sql_file(db, name, params)


def facts(db: object, snapshot_date: dt.date = SNAPSHOT) -> dict[int, dict]:
    """Return the day's facts keyed by repository id."""
    cur = db.execute(
        """
        select repo_id, age_days, recency_score, normalized_stars, momentum_score,
               rank_in_language, rank_overall, star_velocity, previous_snapshot_date,
               formula_version
        from fact_repo_snapshots
        where snapshot_date = %s
        """,
        (snapshot_date,),
    )
    names = [c.name for c in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


SCORING_DAY = [
    staged(1, "python", stars=1000, age_days=10),
    staged(2, "python", stars=500, age_days=14),
    staged(3, "python", stars=250, age_days=15),
    staged(4, "python", stars=100, age_days=74),
    staged(5, "python", stars=50, age_days=400),
    staged(6, "python", stars=20, age_days=500),
    staged(7, "go", stars=0, age_days=20),
    staged(8, "go", stars=0, age_days=3),
]

# Hand-computed: recency = 1 up to 14 days, then max(0.01, 0.5 ** ((age - 14) / 60)).
EXPECTED = {
    1: {"age_days": 10, "recency": 1.0, "normalized": 1.0, "momentum": 1.0},
    2: {"age_days": 14, "recency": 1.0, "normalized": 0.5, "momentum": 0.85},
    3: {
        "age_days": 15,
        "recency": 0.9885140203528962,
        "normalized": 0.25,
        "momentum": 0.7669598142470272,
    },
    4: {"age_days": 74, "recency": 0.5, "normalized": 0.1, "momentum": 0.38},
    5: {
        "age_days": 400,
        "recency": 0.01157107462723878,
        "normalized": 0.05,
        "momentum": 0.023099752239067146,
    },
    6: {"age_days": 500, "recency": 0.01, "normalized": 0.02, "momentum": 0.013},
    # A category whose maximum stars is 0: normalized stars are 0, momentum is 0.7 * recency.
    7: {
        "age_days": 20,
        "recency": 0.9330329915368074,
        "normalized": 0.0,
        "momentum": 0.6531230940757652,
    },
    8: {"age_days": 3, "recency": 1.0, "normalized": 0.0, "momentum": 0.7},
}


@pytest.mark.parametrize("repo_id", sorted(EXPECTED), ids=lambda r: f"repo{r}")
def test_momentum_parts_are_exact(db: object, repo_id: int) -> None:
    load_day(db, SCORING_DAY)
    fact = facts(db)[repo_id]
    expected = EXPECTED[repo_id]
    assert fact["age_days"] == expected["age_days"]
    assert fact["recency_score"] == pytest.approx(expected["recency"], abs=TOLERANCE)
    assert fact["normalized_stars"] == pytest.approx(expected["normalized"], abs=TOLERANCE)
    assert fact["momentum_score"] == pytest.approx(expected["momentum"], abs=TOLERANCE)
    assert fact["formula_version"] == "m1"
    assert fact["star_velocity"] is None
    assert fact["previous_snapshot_date"] is None


def test_ranks_follow_momentum_then_stars_then_id(db: object) -> None:
    load_day(db, SCORING_DAY)
    day = facts(db)
    assert {r: day[r]["rank_in_language"] for r in day} == {
        1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 1, 7: 2,
    }  # fmt: skip
    # Overall: 1.0, 0.85, 0.767, 0.7 (go 8), 0.653 (go 7), 0.38, 0.0231, 0.013.
    assert {r: day[r]["rank_overall"] for r in day} == {
        1: 1, 2: 2, 3: 3, 8: 4, 7: 5, 4: 6, 5: 7, 6: 8,
    }  # fmt: skip


def test_equal_momentum_and_stars_rank_by_repository_id(db: object) -> None:
    load_day(db, [staged(31, "go", 10, 5), staged(30, "go", 10, 5), staged(32, "go", 10, 6)])
    day = facts(db)
    assert [day[r]["rank_in_language"] for r in (30, 31, 32)] == [1, 2, 3]


def test_star_velocity_uses_the_nearest_earlier_snapshot(db: object) -> None:
    first, second = SNAPSHOT - dt.timedelta(days=5), SNAPSHOT - dt.timedelta(days=2)
    load_day(db, [staged(1, "python", 100, 10, snapshot_date=first)], first)
    load_day(db, [staged(1, "python", 130, 10, snapshot_date=second)], second)
    load_day(db, [staged(1, "python", 190, 10)])
    velocity = {day: facts(db, day)[1] for day in (first, second, SNAPSHOT)}
    assert velocity[first]["star_velocity"] is None
    assert velocity[second]["star_velocity"] == pytest.approx(10.0)  # 30 stars over 3 days
    assert velocity[second]["previous_snapshot_date"] == first
    assert velocity[SNAPSHOT]["star_velocity"] == pytest.approx(30.0)  # 60 stars over 2 days
    assert velocity[SNAPSHOT]["previous_snapshot_date"] == second


def test_losing_stars_gives_negative_velocity(db: object) -> None:
    earlier = SNAPSHOT - dt.timedelta(days=4)
    load_day(db, [staged(1, "python", 100, 10, snapshot_date=earlier)], earlier)
    load_day(db, [staged(1, "python", 90, 10)])
    assert facts(db)[1]["star_velocity"] == pytest.approx(-2.5)


def test_rerunning_a_day_replaces_its_facts(db: object) -> None:
    load_day(db, SCORING_DAY)
    load_day(db, SCORING_DAY)
    (count,) = db.execute("select count(*) from fact_repo_snapshots").fetchone()
    (versions,) = db.execute("select count(*) from dim_repositories").fetchone()
    assert (count, versions) == (len(SCORING_DAY), len(SCORING_DAY))


def test_candidates_take_top_fifty_per_language_and_all_render(db: object) -> None:
    rows = [staged(100 + i, "python", stars=i, age_days=30) for i in range(60)]
    rows += [staged(200 + i, "render", stars=i, age_days=30) for i in range(55)]
    load_day(db, rows)
    per_category = dict(
        db.execute(
            "select category, count(*) from stg_repo_candidates group by category"
        ).fetchall()
    )
    assert per_category == {"python": 50, "render": 55}
    (lowest_python,) = db.execute(
        "select min(stars) from stg_repo_candidates where category = 'python'"
    ).fetchone()
    assert lowest_python == 10


def test_backfilling_an_earlier_date_leaves_later_dates_untouched(db: object) -> None:
    earlier = SNAPSHOT - dt.timedelta(days=3)
    load_day(db, [staged(1, "python", 200, 10)])
    later_before = db.execute(
        "select * from fact_repo_snapshots where snapshot_date = %s", (SNAPSHOT,)
    ).fetchall()
    load_day(db, [staged(1, "python", 150, 10, snapshot_date=earlier)], earlier)
    later_after = db.execute(
        "select * from fact_repo_snapshots where snapshot_date = %s", (SNAPSHOT,)
    ).fetchall()
    assert later_after == later_before
    backfilled = facts(db, earlier)[1]
    assert backfilled["star_velocity"] is None
    assert backfilled["age_days"] == 7
    (versions,) = db.execute("select count(*) from dim_repositories").fetchone()
    assert versions == 1  # same attributes: the one version now starts at the backfilled date


def test_a_run_of_some_categories_keeps_the_others(db: object) -> None:
    full_day = [staged(1, "python", 100, 5), staged(2, "go", 80, 5), staged(3, "render", 60, 5)]
    load_day(db, full_day)
    # a later run of the same day that only looked at Python, with a smaller limit
    warehouse.write_staging(db, [{**staged(4, "python", 120, 5), "run_id": "python-only"}], [])
    params = {"snapshot_date": SNAPSHOT, "run_id": "python-only", "per_language_limit": 50}
    for name in (
        "load/candidates.sql",
        "load/dim_repositories.sql",
        "load/fact_repo_snapshots.sql",
    ):
        warehouse.run_sql_file(db, name, params)
    day = facts(db)
    assert sorted(day) == [2, 3, 4]  # python replaced by the new run; go and render kept
    assert {r: day[r]["rank_overall"] for r in day} == {4: 1, 2: 2, 3: 3}
