"""Run settings: what one DAG run searches, resolved at run time from params and the environment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

# Languages searched, as GitHub names them, and the category each one loads into.
LANGUAGE_CATEGORIES: dict[str, str] = {"Python": "python", "TypeScript": "typescript", "Go": "go"}
RENDER_CATEGORY = "render"
CATEGORY_LABELS: dict[str, str] = {
    **{category: language for language, category in LANGUAGE_CATEGORIES.items()},
    RENDER_CATEGORY: "render",
}

DEFAULT_REPO_LIMIT = 25  # top repositories per search, as the original pipeline took
MAX_REPO_LIMIT = 100  # one search page; the params form enforces it too
DEFAULT_DEV_REPO_LIMIT = 5
CREATED_WINDOW_DAYS = 180  # language searches: repositories created in the last 180 days
PUSHED_WINDOW_DAYS = 30  # ... and pushed in the last 30
RENDER_CREATED_WINDOW_DAYS = 548  # render projects: created in the last 18 months
BATCH_SIZE = 10  # repositories validated per mapped task
CANDIDATES_PER_LANGUAGE = 50  # scoring takes the top 50 per language by stars
TRACE_NAMESPACE = uuid.UUID("6f1d0c52-8a51-4f7e-9b0a-9a3f4f0c7e21")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What one run of the DAG does; small enough to travel as an XCom."""

    dag_id: str
    run_id: str
    trace_id: str
    snapshot_date: dt.date
    dev_mode: bool
    repo_limit: int
    languages: tuple[str, ...]
    include_render: bool
    retention_dry_run: bool = False

    def to_xcom(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        data = dataclasses.asdict(self)
        data["snapshot_date"] = self.snapshot_date.isoformat()
        data["languages"] = list(self.languages)
        return data

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> RunSettings:
        """Rebuild settings from :meth:`to_xcom` output."""
        return cls(
            **{
                **data,
                "snapshot_date": dt.date.fromisoformat(data["snapshot_date"]),
                "languages": tuple(data["languages"]),
            }
        )


def parse_bool(value: Any, *, name: str) -> bool:
    """Read a boolean from a param or an environment string."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def parse_limit(value: Any, *, name: str) -> int:
    """Read a repository limit between 1 and MAX_REPO_LIMIT."""
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if not 1 <= limit <= MAX_REPO_LIMIT:
        raise ValueError(f"{name} must be between 1 and {MAX_REPO_LIMIT}, got {limit}")
    return limit


def resolve(
    params: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    dag_id: str,
    run_id: str,
    logical_date: dt.datetime | None,
    run_after: dt.datetime,
) -> RunSettings:
    """
    Resolve the run's settings.

    Params win over the environment (``DEV_MODE``, ``DEV_REPO_LIMIT``). Dev mode searches Python
    only, takes ``DEV_REPO_LIMIT`` repositories (default 5) and skips the render search. The
    snapshot date is the UTC date of the logical date, or of ``run_after`` for runs without one.
    """
    dev_mode_value = params.get("dev_mode")
    dev_mode = parse_bool(
        env.get("DEV_MODE", "false") if dev_mode_value is None else dev_mode_value,
        name="dev_mode",
    )

    limit_value = params.get("repo_limit")
    if limit_value is not None:
        repo_limit = parse_limit(limit_value, name="repo_limit")
    elif dev_mode:
        repo_limit = parse_limit(
            env.get("DEV_REPO_LIMIT", DEFAULT_DEV_REPO_LIMIT), name="DEV_REPO_LIMIT"
        )
    else:
        repo_limit = DEFAULT_REPO_LIMIT

    languages = params.get("languages") or list(LANGUAGE_CATEGORIES)
    unknown = [language for language in languages if language not in LANGUAGE_CATEGORIES]
    if unknown:
        raise ValueError(
            f"languages may only name {', '.join(LANGUAGE_CATEGORIES)}; got {', '.join(unknown)}"
        )
    include_render = parse_bool(params.get("include_render", True), name="include_render")
    if dev_mode:
        languages, include_render = ["Python"], False

    retention_dry_run = parse_bool(params.get("retention_dry_run", False), name="retention_dry_run")
    moment = logical_date or run_after
    return RunSettings(
        dag_id=dag_id,
        run_id=run_id,
        trace_id=uuid.uuid5(TRACE_NAMESPACE, f"{dag_id}/{run_id}").hex,
        snapshot_date=moment.astimezone(dt.UTC).date(),
        dev_mode=dev_mode,
        repo_limit=repo_limit,
        languages=tuple(sorted(set(languages), key=list(LANGUAGE_CATEGORIES).index)),
        include_render=include_render,
        retention_dry_run=retention_dry_run,
    )
