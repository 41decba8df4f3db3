"""Validation of raw repositories: typed staging rows, and counted skips for bad input."""

from __future__ import annotations

import datetime as dt

import pytest

from trender.validate import InvalidRepository, analyze_batch, parse_timestamp, to_staging_row

SNAPSHOT = dt.date(2026, 12, 3)


def raw(**payload: object) -> dict:
    base = {
        "id": 42,
        "full_name": "quillwork-labs/ferry",
        "created_at": "2026-11-20T08:00:00Z",
        "updated_at": "2026-12-01T10:00:00Z",
        "pushed_at": "2026-12-01T09:00:00Z",
        "stargazers_count": 120,
        "forks_count": 3,
        "open_issues_count": 1,
        "language": "Python",
        "topics": ["etl", "airflow"],
        "license": {"spdx_id": "MIT"},
        "homepage": "",
        "description": None,
    }
    base.update(payload)
    return {
        "repo_id": base.get("id"),
        "full_name": base.get("full_name"),
        "category": "python",
        "payload": base,
        "readme_path": "README.md",
        "readme_text": "# ferry\n",
    }


def test_valid_repository_becomes_a_typed_staging_row() -> None:
    row = to_staging_row(raw(), run_id="r", snapshot_date=SNAPSHOT, category="python")
    assert row["owner_login"] == "quillwork-labs"
    assert row["repo_name"] == "ferry"
    assert row["created_at"] == "2026-11-20T08:00:00+00:00"
    assert row["topics"] == ["airflow", "etl"]
    assert row["license_spdx"] == "MIT"
    assert row["homepage"] is None  # "" and null are the same absence
    assert row["description"] is None
    assert row["stars"] == 120
    # sha256 of "# ferry\n"
    assert row["readme_hash"] == "3b5913cafc4c21ca479fddd19c4b31605ba68b5758294078637546de7785d171"


def test_timestamps_become_timezone_aware_utc() -> None:
    parsed = parse_timestamp("2026-11-20T08:00:00+02:00", "created_at")
    assert parsed == dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)
    assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"id": None}, "required field\\(s\\) missing: id"),
        ({"full_name": ""}, "required field\\(s\\) missing: full_name"),
        ({"created_at": None, "updated_at": None}, "missing: created_at, updated_at"),
        ({"created_at": "yesterday"}, "created_at is not an ISO 8601 timestamp"),
        ({"created_at": "2026-11-20T08:00:00"}, "created_at has no time zone"),
        ({"full_name": "no-slash"}, "full_name is not owner/name"),
        ({"stargazers_count": -1}, "stargazers_count is not a whole number from 0 to 2147483647"),
        ({"forks_count": 2**40}, "forks_count is not a whole number from 0 to 2147483647"),
        ({"topics": "etl"}, "topics is not a list of strings"),
        ({"id": "42"}, "id is not a positive whole number"),
    ],
    ids=["no-id", "no-name", "no-dates", "bad-date", "naive-date", "bad-name", "bad-stars",
         "huge-forks", "bad-topics", "string-id"],
)  # fmt: skip
def test_invalid_repository_is_rejected_with_its_reason(payload: dict, reason: str) -> None:
    with pytest.raises(InvalidRepository, match=reason):
        to_staging_row(raw(**payload), run_id="r", snapshot_date=SNAPSHOT, category="python")


def test_missing_category_is_rejected() -> None:
    with pytest.raises(InvalidRepository, match="category is missing"):
        to_staging_row(raw(), run_id="r", snapshot_date=SNAPSHOT, category="")


def test_one_bad_repository_never_fails_its_batch() -> None:
    rows = [
        raw(id=1, full_name="a/one"),
        raw(id=2, full_name="a/two", created_at="soon"),
        raw(id=3, full_name="a/three"),
    ]
    staged, errors, metrics = analyze_batch(rows, run_id="r", snapshot_date=SNAPSHOT)
    assert [row["repo_id"] for row in staged] == [1, 3]
    assert errors == [
        {
            "run_id": "r",
            "snapshot_date": "2026-12-03",
            "category": "python",
            "repo_id": 2,
            "full_name": "a/two",
            "reason": "created_at is not an ISO 8601 timestamp: 'soon'",
        }
    ]
    assert metrics == {
        "repos_received": 3,
        "repos_validated": 2,
        "repos_skipped": 1,
        "skip_reasons": {"created_at is not an ISO 8601 timestamp": 1},
        "readmes_missing": 0,
    }
