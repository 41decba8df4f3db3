"""Validation of raw repositories into staging rows; a bad repository is skipped and counted."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

REQUIRED_FIELDS = ("id", "full_name", "created_at", "updated_at")
MAX_COUNT = 2**31 - 1  # stars, forks and issues are stored as PostgreSQL integers


class InvalidRepository(ValueError):
    """Raised when a raw repository cannot become a staging row."""


def parse_timestamp(value: Any, field: str) -> dt.datetime:
    """Parse a GitHub ISO 8601 timestamp into a timezone-aware UTC datetime."""
    if not isinstance(value, str) or not value:
        raise InvalidRepository(f"{field} is missing")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRepository(f"{field} is not an ISO 8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise InvalidRepository(f"{field} has no time zone: {value[:40]!r}")
    return parsed.astimezone(dt.UTC)


def _count(payload: Mapping[str, Any], field: str) -> int:
    value = payload.get(field, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise InvalidRepository(f"{field} is not a whole number from 0 to {MAX_COUNT}: {value!r}")
    return value


def _optional_text(payload: Mapping[str, Any], field: str) -> str | None:
    value = payload.get(field)
    if value is None or value == "":
        return None
    return str(value)


def to_staging_row(
    raw: Mapping[str, Any], *, run_id: str, snapshot_date: dt.date, category: str
) -> dict[str, Any]:
    """Validate one raw repository and return its staging row."""
    payload = raw.get("payload")
    if not isinstance(payload, Mapping):
        raise InvalidRepository("payload is not a JSON object")
    missing = [field for field in REQUIRED_FIELDS if payload.get(field) in (None, "")]
    if missing:
        raise InvalidRepository(f"required field(s) missing: {', '.join(missing)}")
    if not category:
        raise InvalidRepository("category is missing")
    repo_id = payload["id"]
    if isinstance(repo_id, bool) or not isinstance(repo_id, int) or repo_id <= 0:
        raise InvalidRepository(f"id is not a positive whole number: {repo_id!r}")
    full_name = str(payload["full_name"])
    owner_login, slash, repo_name = full_name.partition("/")
    if not slash or not owner_login or not repo_name:
        raise InvalidRepository(f"full_name is not owner/name: {full_name[:80]!r}")

    created_at = parse_timestamp(payload["created_at"], "created_at")
    updated_at = parse_timestamp(payload["updated_at"], "updated_at")
    pushed_at = (
        parse_timestamp(payload["pushed_at"], "pushed_at") if payload.get("pushed_at") else None
    )
    topics = payload.get("topics") or []
    if not isinstance(topics, list) or not all(isinstance(topic, str) for topic in topics):
        raise InvalidRepository("topics is not a list of strings")
    license_info = payload.get("license")
    license_spdx = license_info.get("spdx_id") if isinstance(license_info, Mapping) else None

    readme_text = raw.get("readme_text")
    return {
        "snapshot_date": snapshot_date.isoformat(),
        "repo_id": repo_id,
        "run_id": run_id,
        "category": category,
        "full_name": full_name,
        "owner_login": owner_login,
        "repo_name": repo_name,
        "description": _optional_text(payload, "description"),
        "homepage": _optional_text(payload, "homepage"),
        "primary_language": _optional_text(payload, "language"),
        "topics": sorted(topics),
        "license_spdx": license_spdx,
        "is_archived": bool(payload.get("archived", False)),
        "is_fork": bool(payload.get("fork", False)),
        "default_branch": _optional_text(payload, "default_branch"),
        "stars": _count(payload, "stargazers_count"),
        "forks": _count(payload, "forks_count"),
        "open_issues": _count(payload, "open_issues_count"),
        "created_at": created_at.isoformat(),
        "updated_at": updated_at.isoformat(),
        "pushed_at": pushed_at.isoformat() if pushed_at else None,
        "readme_path": raw.get("readme_path"),
        "readme_text": readme_text,
        "readme_hash": (
            hashlib.sha256(readme_text.encode("utf-8")).hexdigest() if readme_text else None
        ),
        "readme_truncated": bool(raw.get("readme_truncated", False)),
    }


def analyze_batch(
    raw_rows: Sequence[Mapping[str, Any]], *, run_id: str, snapshot_date: dt.date
) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """
    Validate a batch of raw rows.

    Returns the staging rows, the validation errors (one per skipped repository, with its
    reason) and the batch's metrics. One bad repository never fails the batch.
    """
    staged: list[dict] = []
    errors: list[dict] = []
    reasons: Counter[str] = Counter()
    readmes_missing = 0
    for raw in raw_rows:
        category = raw.get("category") or ""
        try:
            row = to_staging_row(raw, run_id=run_id, snapshot_date=snapshot_date, category=category)
        except InvalidRepository as exc:
            reason = str(exc)
            log.warning(
                "Skipping repository %s (id %s): %s",
                raw.get("full_name"),
                raw.get("repo_id"),
                reason,
            )
            reasons[reason.split(":")[0]] += 1
            errors.append(
                {
                    "run_id": run_id,
                    "snapshot_date": snapshot_date.isoformat(),
                    "category": category,
                    "repo_id": raw.get("repo_id"),
                    "full_name": raw.get("full_name"),
                    "reason": reason,
                }
            )
            continue
        if row["readme_text"] is None:
            readmes_missing += 1
        staged.append(row)
    metrics = {
        "repos_received": len(raw_rows),
        "repos_validated": len(staged),
        "repos_skipped": len(errors),
        "skip_reasons": dict(reasons),
        "readmes_missing": readmes_missing,
    }
    return staged, errors, metrics
