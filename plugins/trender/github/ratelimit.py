"""Rate-limit policy for GitHub's per-resource budgets: pace before they run out, wait them out.

GitHub keeps a separate budget per resource (``core``, ``search``, ``code_search``, ...) and
reports it in every answer's ``x-ratelimit-*`` headers. When a request is refused, GitHub's
documented order applies: wait ``retry-after`` seconds when the header is present; otherwise
wait until ``x-ratelimit-reset`` (computed against the server's ``Date``, since the local clock
may be off); otherwise wait at least a minute, backing off exponentially.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from trender.github.clock import Clock, default_clock
from trender.github.errors import GitHubRateLimitError, GitHubRateLimitExhaustedError, header

log = logging.getLogger(__name__)

# GitHub: "If you exceed a secondary rate limit and retry-after is absent, wait at least one
# minute"; each further refusal doubles the wait.
MIN_UNSPECIFIED_WAIT_SECONDS = 60.0
# Reset times have one-second resolution and clocks drift: wait a little past the reset.
RESET_BUFFER_SECONDS = 2.0
DEFAULT_MAX_ATTEMPTS = 4  # rate-limit retries of one request before giving up
DEFAULT_MAX_WAIT_SECONDS = 15 * 60.0  # longest single wait; the core budget resets hourly
DEFAULT_MAX_TOTAL_WAIT_SECONDS = 30 * 60.0  # all waits of one client; tasks time out at 20 min
# Pace once fewer than this share of a budget is left: spread the remaining requests over the
# time to the reset instead of spending them at once and stalling on a 403.
PACE_BELOW_FRACTION = 0.1
MAX_PACE_SECONDS = 60.0  # longest pause before one request; longer pauses wait for the 403


@dataclass
class Budget:
    """A resource's budget as last reported by GitHub."""

    limit: int | None
    remaining: int
    reset_at: float | None  # server UNIX time


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = header(headers, name)
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def server_date(headers: Mapping[str, str]) -> float | None:
    """Return the UNIX time of a response's ``Date`` header, or None."""
    value = header(headers, "Date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class GitHubRateLimitPolicy:
    """Track each resource's budget, pace requests when it runs low, and wait out refusals.

    Waits are bounded per attempt, in number and in total; past a bound the request fails
    with :class:`GitHubRateLimitExhaustedError`. The clock (time and sleep) is injectable so
    tests run instantly.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        max_total_wait_seconds: float = DEFAULT_MAX_TOTAL_WAIT_SECONDS,
        reset_buffer_seconds: float = RESET_BUFFER_SECONDS,
        pace_below_fraction: float = PACE_BELOW_FRACTION,
        max_pace_seconds: float = MAX_PACE_SECONDS,
    ) -> None:
        """Configure the bounds; the clock defaults to the process-wide one."""
        if max_attempts < 0:
            raise ValueError("max_attempts must not be negative")
        self.clock = clock or default_clock()
        self._max_attempts = max_attempts
        self._max_wait = max_wait_seconds
        self._max_total = max_total_wait_seconds
        self._buffer = reset_buffer_seconds
        self._pace_fraction = pace_below_fraction
        self._max_pace = max_pace_seconds
        self._lock = threading.Lock()
        self._budgets: dict[str, Budget] = {}
        self._skew = 0.0  # server time minus local time, from the latest Date header
        self.waited_seconds = 0.0
        self.paced_requests = 0
        self.paced_seconds = 0.0

    def sleep(self, seconds: float) -> None:
        """Sleep on the policy's clock (the client's retry waits use it too)."""
        self.clock.sleep(seconds)

    def server_now(self) -> float:
        """Return the server's current time as estimated from its ``Date`` headers."""
        return self.clock.time() + self._skew

    def before_request(self, resource: str) -> None:
        """Pause before a request when the resource's budget is nearly spent."""
        delay = self._pace_delay(resource)
        if delay <= 0:
            return
        with self._lock:
            over_total = self.waited_seconds + delay > self._max_total
        if delay > self._max_pace or over_total:
            log.debug("%s budget spent; %.0fs to its reset is too long to pace", resource, delay)
            return
        log.warning(
            "%s rate-limit budget is low; pausing %.1fs before the next request", resource, delay
        )
        with self._lock:
            self.paced_requests += 1
            self.paced_seconds += delay
            self.waited_seconds += delay
        self.clock.sleep(delay)

    def _pace_delay(self, resource: str) -> float:
        with self._lock:
            budget = self._budgets.get(resource)
            if budget is None or budget.reset_at is None:
                return 0.0
            to_reset = budget.reset_at - (self.clock.time() + self._skew)
            if to_reset <= 0:
                del self._budgets[resource]  # the window rolled over; the next answer reports
                return 0.0
            remaining = budget.remaining
            budget.remaining = max(0, remaining - 1)  # reserve one for this request
            threshold = max(1, math.ceil((budget.limit or 0) * self._pace_fraction))
        if remaining <= 0:
            return to_reset + self._buffer
        if remaining < threshold:
            return to_reset / (remaining + 1)
        return 0.0

    def after_response(self, resource: str, headers: Mapping[str, str], status: int) -> None:
        """Record the budget and the server clock an answer reports."""
        date = server_date(headers)
        remaining = _int_header(headers, "x-ratelimit-remaining")
        name = (header(headers, "x-ratelimit-resource") or resource).strip()
        with self._lock:
            if date is not None:
                self._skew = date - self.clock.time()
            if remaining is None:
                return
            reset = _int_header(headers, "x-ratelimit-reset")
            self._budgets[name] = Budget(
                limit=_int_header(headers, "x-ratelimit-limit"),
                remaining=remaining,
                reset_at=float(reset) if reset is not None else None,
            )

    def wait_for(self, error: GitHubRateLimitError, attempt: int) -> float:
        """Return the seconds to wait before retrying, or raise when a bound is reached."""
        if error.retry_after is not None:
            wait, basis = error.retry_after, "retry-after"
        elif error.kind == "primary" and error.reset_at is not None:
            # x-ratelimit-reset describes the primary budget; a secondary limit ignores it.
            wait = max(error.reset_at - self.server_now(), 0.0) + self._buffer
            basis = "reset time"
        else:
            wait = MIN_UNSPECIFIED_WAIT_SECONDS * 2**attempt
            basis = "no retry-after or reset header: backing off"
        resource = error.resource or "unknown"
        if attempt >= self._max_attempts:
            self._give_up(error, f"still limited after {attempt} retries")
        if wait > self._max_wait:
            self._give_up(
                error, f"the {basis} asks for {wait:.0f}s, more than the {self._max_wait:.0f}s"
                " this client waits at once",
            )  # fmt: skip
        with self._lock:
            if self.waited_seconds + wait > self._max_total:
                waited = self.waited_seconds
            else:
                waited = None
                self.waited_seconds += wait
        if waited is not None:
            self._give_up(
                error, f"waiting {wait:.0f}s more would pass the {self._max_total:.0f}s total"
                f" wait limit ({waited:.0f}s waited)",
            )  # fmt: skip
        log.warning(
            "%s %s rate limit on %s; waiting %.1fs (%s)",
            resource, error.kind, error.path, wait, basis,
        )  # fmt: skip
        return wait

    def _give_up(self, error: GitHubRateLimitError, reason: str) -> None:
        resource = error.resource or "unknown"
        message = f"{resource} {error.kind} rate limit: gave up, {reason}"
        raise GitHubRateLimitExhaustedError(
            message,
            kind=error.kind,
            retry_after=error.retry_after,
            reset_at=error.reset_at,
            resource=error.resource,
            status=error.status,
            method=error.method,
            path=error.path,
            request_id=error.request_id,
        ) from error

    def snapshot(self) -> dict[str, Any]:
        """Return the budgets and waits as JSON-serialisable data."""
        with self._lock:
            return {
                "budgets": {
                    name: {
                        "limit": budget.limit,
                        "remaining": budget.remaining,
                        "reset_at": budget.reset_at,
                    }
                    for name, budget in sorted(self._budgets.items())
                },
                "waited_seconds": round(self.waited_seconds, 3),
                "paced_requests": self.paced_requests,
                "paced_seconds": round(self.paced_seconds, 3),
            }
