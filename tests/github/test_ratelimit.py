"""The rate-limit policy: per-resource budgets, pacing, GitHub's documented wait order, bounds."""

from __future__ import annotations

import email.utils

import pytest

from trender.github.clock import ManualClock
from trender.github.errors import GitHubRateLimitError, GitHubRateLimitExhaustedError
from trender.github.ratelimit import GitHubRateLimitPolicy

NOW = 1_800_000_000.0


def headers(remaining: int, reset_in: float, *, limit: int = 30, resource: str = "search",
            server_ahead: float = 0.0) -> dict[str, str]:  # fmt: skip
    """Return an answer's rate-limit headers, with a Date ``server_ahead`` of the local clock."""
    return {
        "Date": email.utils.formatdate(NOW + server_ahead, usegmt=True),
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(int(NOW + server_ahead + reset_in)),
        "x-ratelimit-resource": resource,
    }


def limited(kind: str, *, retry_after: float | None = None, reset_at: float | None = None):
    """Return a rate-limit error as the classifier builds it."""
    return GitHubRateLimitError(
        "limited", kind=kind, retry_after=retry_after, reset_at=reset_at, resource="search",
        status=403, path="/search/repositories",
    )  # fmt: skip


@pytest.fixture
def clock() -> ManualClock:
    """Return a manual clock at NOW."""
    return ManualClock(NOW)


def test_budgets_are_tracked_per_resource(clock: ManualClock) -> None:
    policy = GitHubRateLimitPolicy(clock=clock)
    policy.after_response("search", headers(29, 60), 200)
    policy.after_response("core", headers(4990, 3000, limit=5000, resource="core"), 200)

    assert policy.snapshot()["budgets"] == {
        "core": {"limit": 5000, "remaining": 4990, "reset_at": NOW + 3000},
        "search": {"limit": 30, "remaining": 29, "reset_at": NOW + 60},
    }


def test_plenty_left_sends_without_pausing(clock: ManualClock) -> None:
    policy = GitHubRateLimitPolicy(clock=clock)
    policy.after_response("search", headers(10, 60), 200)

    policy.before_request("search")

    assert clock.slept == []


def test_low_budget_spreads_the_rest_over_the_time_to_reset(clock: ManualClock) -> None:
    policy = GitHubRateLimitPolicy(clock=clock)
    policy.after_response("search", headers(2, 30), 200)  # under 10% of 30 left

    policy.before_request("search")
    policy.before_request("search")

    assert clock.slept == [10.0, 20.0 / 2]  # 30s over 3 slots, then 20s over 2
    assert policy.snapshot()["paced_requests"] == 2


def test_spent_budget_waits_for_the_reset_on_the_server_clock(clock: ManualClock) -> None:
    policy = GitHubRateLimitPolicy(clock=clock)
    policy.after_response("search", headers(0, 20, server_ahead=100.0), 200)

    policy.before_request("search")

    assert clock.slept == [22.0]  # the reset is 20s ahead on the server's clock, plus 2s


def test_rolled_over_window_is_forgotten(clock: ManualClock) -> None:
    policy = GitHubRateLimitPolicy(clock=clock)
    policy.after_response("search", headers(0, 20), 200)
    clock.advance(25)

    policy.before_request("search")

    assert clock.slept == []
    assert policy.snapshot()["budgets"] == {}


@pytest.mark.parametrize(
    ("error", "attempt", "wait"),
    [
        (limited("secondary", retry_after=7.0, reset_at=NOW + 500), 0, 7.0),
        (limited("primary", reset_at=NOW + 40), 0, 42.0),
        (limited("primary", reset_at=NOW - 40), 0, 2.0),
        (limited("secondary", reset_at=NOW + 40), 0, 60.0),
        (limited("secondary"), 2, 240.0),
        (limited("primary"), 1, 120.0),
    ],
    ids=["retry-after-first", "reset", "reset-passed-never-negative", "secondary-ignores-reset",
         "backoff-third", "primary-without-reset"],
)  # fmt: skip
def test_wait_follows_githubs_order(
    clock: ManualClock, error: GitHubRateLimitError, attempt: int, wait: float
) -> None:
    policy = GitHubRateLimitPolicy(clock=clock)
    policy.after_response("search", {"Date": email.utils.formatdate(NOW, usegmt=True)}, 403)

    assert policy.wait_for(error, attempt) == wait


def test_wait_longer_than_the_maximum_gives_up_naming_it(clock: ManualClock) -> None:
    policy = GitHubRateLimitPolicy(clock=clock, max_wait_seconds=100)

    with pytest.raises(
        GitHubRateLimitExhaustedError,
        match=r"search primary rate limit: gave up, the reset time asks for 3602s, more than "
        r"the 100s this client waits at once",
    ):
        policy.wait_for(limited("primary", reset_at=NOW + 3600), 0)


def test_total_wait_is_bounded(clock: ManualClock) -> None:
    policy = GitHubRateLimitPolicy(clock=clock, max_total_wait_seconds=100)
    assert policy.wait_for(limited("secondary", retry_after=60), 0) == 60

    with pytest.raises(GitHubRateLimitExhaustedError, match=r"pass the 100s total wait limit"):
        policy.wait_for(limited("secondary", retry_after=60), 1)


def test_attempts_are_bounded(clock: ManualClock) -> None:
    policy = GitHubRateLimitPolicy(clock=clock, max_attempts=2)

    with pytest.raises(GitHubRateLimitExhaustedError, match=r"still limited after 2 retries"):
        policy.wait_for(limited("secondary", retry_after=1), 2)
