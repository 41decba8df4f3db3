"""Three days of replayed GitHub: stars grow, a description and a README change, a repository is
renamed and one disappears for a day. Exact dimension versions, facts and star velocities."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import dag_environment
from tests.dags.dagrun import run_dag

FIRST_DAY = dt.date(2026, 12, 3)
DAYS = [FIRST_DAY + dt.timedelta(days=n) for n in range(3)]
RENAMED = 890416255  # driftwood-newt49/tally-line -> tally-line-next on day 1
DESCRIBED = 904258032  # driftwood-badger12/lattice-shelf: new description on day 1
README_CHANGED = 854837751  # driftwood-badger12/prism-relay: README gains a section on day 2
ABSENT = 896322467  # harborline-collective/yarrow-flow: missing on day 1, back on day 2

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def replayed(pg_server_url: str, schema_template: str) -> Iterator[tuple[list, psycopg.Connection]]:
    """Run the DAG once per replayed day (each dated by its own logical date), once per module."""
    with dag_environment(pg_server_url, schema_template) as (url, server):
        runs = []
        for index, day in enumerate(DAYS):
            server.set_day(index)
            server.set_as_of(day)
            runs.append(run_dag(dt.datetime.combine(day, dt.time(14), dt.UTC)))
        with psycopg.connect(url) as conn:
            yield runs, conn


@pytest.fixture
def three_days(replayed: tuple[list, psycopg.Connection]) -> list[object]:
    return replayed[0]


@pytest.fixture
def db(replayed: tuple[list, psycopg.Connection]) -> psycopg.Connection:
    return replayed[1]


def test_every_day_succeeds_with_a_full_ranking(
    three_days: list[object], db: psycopg.Connection
) -> None:
    assert [run.state for run in three_days] == ["success"] * 3
    per_day = db.execute(
        "select snapshot_date, count(*) from fact_repo_snapshots group by 1 order by 1"
    ).fetchall()
    assert per_day == [(day, 99) for day in DAYS]
    opened = db.execute(
        "select valid_from, count(*) from dim_repositories group by 1 order by 1"
    ).fetchall()
    # day 1: 2 changed repositories and 3 newcomers to a top 25; day 2: one README change
    assert opened == [(DAYS[0], 99), (DAYS[1], 5), (DAYS[2], 1)]
    (current,) = db.execute("select count(*) from dim_repositories where is_current").fetchone()
    assert current == 102


def versions(db: psycopg.Connection, repo_id: int) -> list[tuple]:
    return db.execute(
        "select full_name, valid_from, valid_to, is_current from dim_repositories "
        "where repo_id = %s order by valid_from",
        (repo_id,),
    ).fetchall()


def test_a_rename_is_tracked_as_a_version_of_the_same_repository(
    three_days: list[object], db: psycopg.Connection
) -> None:
    assert versions(db, RENAMED) == [
        ("driftwood-newt49/tally-line", DAYS[0], DAYS[1], False),
        ("driftwood-newt49/tally-line-next", DAYS[1], None, True),
    ]


def test_description_and_readme_changes_open_new_versions(
    three_days: list[object], db: psycopg.Connection
) -> None:
    assert versions(db, DESCRIBED) == [
        ("driftwood-badger12/lattice-shelf", DAYS[0], DAYS[1], False),
        ("driftwood-badger12/lattice-shelf", DAYS[1], None, True),
    ]
    assert versions(db, README_CHANGED) == [
        ("driftwood-badger12/prism-relay", DAYS[0], DAYS[2], False),
        ("driftwood-badger12/prism-relay", DAYS[2], None, True),
    ]
    hashes = db.execute(
        "select count(distinct readme_hash) from dim_repositories where repo_id = %s",
        (README_CHANGED,),
    ).fetchone()
    assert hashes == (2,)


def test_a_repository_absent_for_a_day_stays_open_and_its_velocity_spans_the_gap(
    three_days: list[object], db: psycopg.Connection
) -> None:
    assert versions(db, ABSENT) == [("harborline-collective/yarrow-flow", DAYS[0], None, True)]
    facts = db.execute(
        "select snapshot_date, stars, star_velocity, previous_snapshot_date "
        "from fact_repo_snapshots where repo_id = %s order by 1",
        (ABSENT,),
    ).fetchall()
    assert facts == [(DAYS[0], 1963, None, None), (DAYS[2], 2005, 21.0, DAYS[0])]


def test_star_velocity_per_day(three_days: list[object], db: psycopg.Connection) -> None:
    facts = db.execute(
        "select repo_id, snapshot_date, stars, star_velocity from fact_repo_snapshots "
        "where repo_id in (%s, %s) order by 1, 2",
        (RENAMED, DESCRIBED),
    ).fetchall()
    assert facts == [
        (RENAMED, DAYS[0], 891, None),
        (RENAMED, DAYS[1], 920, 29.0),
        (RENAMED, DAYS[2], 920, 0.0),
        (DESCRIBED, DAYS[0], 4294, None),
        (DESCRIBED, DAYS[1], 4432, 138.0),
        (DESCRIBED, DAYS[2], 4457, 25.0),
    ]


def test_each_fact_refers_to_the_version_valid_on_its_day(
    three_days: list[object], db: psycopg.Connection
) -> None:
    names = db.execute(
        "select f.snapshot_date, d.full_name from fact_repo_snapshots as f "
        "join dim_repositories as d on d.repo_key = f.repo_key where f.repo_id = %s order by 1",
        (RENAMED,),
    ).fetchall()
    assert names == [
        (DAYS[0], "driftwood-newt49/tally-line"),
        (DAYS[1], "driftwood-newt49/tally-line-next"),
        (DAYS[2], "driftwood-newt49/tally-line-next"),
    ]


def test_unchanged_readmes_cost_nothing_the_next_day(
    three_days: list[object], db: psycopg.Connection
) -> None:
    costs = [
        row[0]["api_requests"]
        for row in db.execute("select summary from fact_workflow_runs order by snapshot_date")
    ]
    assert costs[0] == {
        "charged": {"core": 132, "search": 3, "code_search": 1},
        "not_modified_free": 0,
    }
    # day 1: READMEs and repositories are asked for with their ETags; unchanged ones come back
    # as free 304s, so only 38 of the 132 core requests are charged
    assert costs[1] == {
        "charged": {"core": 38, "search": 3, "code_search": 1},
        "not_modified_free": 94,
    }
