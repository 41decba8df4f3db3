"""Run settings: params over environment, dev mode, dates from logical_date or run_after."""

from __future__ import annotations

import datetime as dt

import pytest

from trender.settings import RunSettings, resolve

LOGICAL = dt.datetime(2026, 12, 3, 14, tzinfo=dt.UTC)


def settings(params: dict | None = None, env: dict | None = None, **dates: object) -> RunSettings:
    kwargs = {"logical_date": LOGICAL, "run_after": LOGICAL, **dates}
    return resolve(params or {}, env or {}, dag_id="trender_daily", run_id="r1", **kwargs)


def test_defaults_search_three_languages_and_render_with_25_each() -> None:
    run = settings()
    assert run.languages == ("Python", "TypeScript", "Go")
    assert (run.repo_limit, run.include_render, run.dev_mode) == (25, True, False)
    assert run.snapshot_date == dt.date(2026, 12, 3)


def test_dev_mode_from_environment_is_python_only_with_five() -> None:
    run = settings(env={"DEV_MODE": "true"})
    assert (run.languages, run.repo_limit, run.include_render) == (("Python",), 5, False)


def test_dev_repo_limit_environment_sets_the_dev_limit() -> None:
    assert settings(env={"DEV_MODE": "1", "DEV_REPO_LIMIT": "8"}).repo_limit == 8


def test_params_override_the_environment() -> None:
    run = settings({"dev_mode": False, "repo_limit": 12}, {"DEV_MODE": "true"})
    assert (run.dev_mode, run.repo_limit, len(run.languages)) == (False, 12, 3)


def test_language_subset_keeps_the_canonical_order() -> None:
    run = settings({"languages": ["Go", "Python"], "include_render": False})
    assert (run.languages, run.include_render) == (("Python", "Go"), False)


def test_manual_run_without_logical_date_is_dated_by_run_after() -> None:
    run_after = dt.datetime(2026, 12, 4, 0, 30, tzinfo=dt.UTC)
    assert settings(logical_date=None, run_after=run_after).snapshot_date == dt.date(2026, 12, 4)


def test_snapshot_date_is_the_utc_date() -> None:
    late_evening = dt.datetime(2026, 12, 3, 20, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    assert settings(logical_date=late_evening).snapshot_date == dt.date(2026, 12, 4)


@pytest.mark.parametrize(
    ("params", "env", "message"),
    [
        ({"repo_limit": 0}, {}, "repo_limit must be between 1 and 100, got 0"),
        ({"repo_limit": 101}, {}, "repo_limit must be between 1 and 100, got 101"),
        (
            {},
            {"DEV_MODE": "yes", "DEV_REPO_LIMIT": "many"},
            "DEV_REPO_LIMIT must be a whole number",
        ),
        ({}, {"DEV_MODE": "perhaps"}, "dev_mode must be true or false, got 'perhaps'"),
        ({"languages": ["Rust"]}, {}, "languages may only name Python, TypeScript, Go; got Rust"),
    ],
    ids=["limit-zero", "limit-too-big", "dev-limit-not-a-number", "dev-mode-unclear", "language"],
)
def test_bad_settings_fail_with_a_message_saying_what_to_fix(
    params: dict, env: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        settings(params, env)


def test_settings_round_trip_through_xcom() -> None:
    run = settings({"languages": ["Go"]})
    assert RunSettings.from_xcom(run.to_xcom()) == run


def test_trace_id_is_stable_for_a_run_and_differs_between_runs() -> None:
    again = resolve(
        {}, {}, dag_id="trender_daily", run_id="r1", logical_date=LOGICAL, run_after=LOGICAL
    )
    other = resolve(
        {}, {}, dag_id="trender_daily", run_id="r2", logical_date=LOGICAL, run_after=LOGICAL
    )
    assert settings().trace_id == again.trace_id != other.trace_id


def test_retention_dry_run_is_off_unless_asked() -> None:
    assert settings().retention_dry_run is False
    assert settings({"retention_dry_run": True}).retention_dry_run is True
