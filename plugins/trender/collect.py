"""The fetch steps: search GitHub, fetch READMEs, and store what came back in the raw layer."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from trender import settings as cfg
from trender import warehouse
from trender.github.client import GitHubClient, Readme
from trender.github.errors import GitHubError, GitHubNotFound
from trender.settings import RunSettings
from trender.text import sanitize

log = logging.getLogger(__name__)

RENDER_CODE_QUERY = "filename:render.yaml path:/"
RENDER_CODE_SEARCH_LIMIT = 200  # code hits examined to find the render projects of the window
REPOSITORY_WORKERS = 8  # concurrent GET /repos/{owner}/{repo} calls for code search hits
# READMEs are stored up to 256 KiB of UTF-8; longer ones are cut there and their original size
# kept. Scoring needs none of the text, and a few huge READMEs would otherwise dominate storage.
README_MAX_BYTES = 256 * 1024

# Looks up, per repository id, the README stored on an earlier day (ETag and text).
PreviousReadmes = Callable[[Sequence[int]], Mapping[int, Mapping[str, Any]]]


def previous_readmes_reader(snapshot_date: dt.date) -> PreviousReadmes:
    """Return a lookup of the READMEs stored before ``snapshot_date``, for conditional requests."""

    def read(repo_ids: Sequence[int]) -> Mapping[int, Mapping[str, Any]]:
        conn = warehouse.connect()
        try:
            return warehouse.read_previous_readmes(conn, repo_ids, snapshot_date)
        finally:
            conn.close()

    return read


def truncate_utf8(text: str, max_bytes: int = README_MAX_BYTES) -> tuple[str, int, bool]:
    """Cut text to at most max_bytes of UTF-8 on a character boundary; return it, size, cut."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text, len(encoded), False
    return encoded[:max_bytes].decode("utf-8", errors="ignore"), len(encoded), True


def language_query(language: str, snapshot_date: dt.date) -> str:
    """Return the repository search for young, recently pushed repositories of a language."""
    created_since = snapshot_date - dt.timedelta(days=cfg.CREATED_WINDOW_DAYS)
    pushed_since = snapshot_date - dt.timedelta(days=cfg.PUSHED_WINDOW_DAYS)
    return (
        f"language:{language} created:>={created_since.isoformat()} "
        f"pushed:>={pushed_since.isoformat()} fork:false"
    )


def _parse_created(repo: Mapping[str, Any]) -> dt.datetime | None:
    value = repo.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _raw_row(
    run: RunSettings,
    category: str,
    query: str,
    repo: Mapping[str, Any],
    readme: Readme | GitHubError | None,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    payload, sanitized = sanitize(dict(repo))
    row: dict[str, Any] = {
        "run_id": run.run_id,
        "snapshot_date": run.snapshot_date.isoformat(),
        "category": category,
        "repo_id": repo.get("id"),
        "full_name": repo.get("full_name"),
        "search_query": query,
        "payload": payload,
        "sanitized_fields": sanitized,
        "readme_path": None,
        "readme_text": None,
        "readme_sha": None,
        "readme_size": None,
        "readme_etag": None,
        "readme_status": "error",
        "readme_note": None,
        "readme_original_bytes": None,
        "readme_truncated": False,
    }
    if isinstance(readme, GitHubError) or readme is None:
        row["readme_note"] = str(readme) if readme is not None else "not fetched"
        return row
    if readme.missing:
        row["readme_status"] = "missing"
        return row
    if readme.not_modified and previous is not None:
        # 304: the README is unchanged since that day; carry its stored text forward.
        row.update(
            readme_path=previous.get("readme_path"),
            readme_text=previous.get("readme_text"),
            readme_sha=previous.get("readme_sha"),
            readme_size=previous.get("readme_size"),
            readme_etag=readme.etag or previous.get("readme_etag"),
            readme_status="not_modified",
            readme_note=previous.get("readme_note"),
            readme_original_bytes=previous.get("readme_original_bytes"),
            readme_truncated=bool(previous.get("readme_truncated")),
        )
        return row
    text, original_bytes, truncated = (
        truncate_utf8(readme.text) if readme.text is not None else (None, None, False)
    )
    if truncated:
        log.warning(
            "README of %s is %d bytes; stored truncated to %d",
            repo.get("full_name"), original_bytes, README_MAX_BYTES,
        )  # fmt: skip
    row.update(
        readme_path=readme.path,
        readme_text=text,
        readme_original_bytes=original_bytes,
        readme_truncated=truncated,
        readme_sha=readme.sha,
        readme_size=readme.size,
        readme_etag=readme.etag,
        readme_status="not_modified" if readme.not_modified else "ok",
        readme_note=readme.decode_note,
    )
    return row


def _page_rows(run: RunSettings, category: str, search_type: str, result: Any) -> list[dict]:
    return [
        {
            "run_id": run.run_id,
            "snapshot_date": run.snapshot_date.isoformat(),
            "category": category,
            "search_type": search_type,
            "query": page.query,
            "page": page.page,
            "total_count": page.total_count,
            "incomplete_results": page.incomplete_results,
            "item_count": page.item_count,
        }
        for page in result.pages
    ]


def _with_readmes(
    client: GitHubClient,
    run: RunSettings,
    category: str,
    query: str,
    repos: Sequence[Mapping[str, Any]],
    previous_readmes: PreviousReadmes | None = None,
) -> tuple[list[dict], dict[str, int]]:
    previous = previous_readmes([repo["id"] for repo in repos]) if previous_readmes else {}
    etags = {
        repo["full_name"]: previous[repo["id"]]["readme_etag"]
        for repo in repos
        if repo["id"] in previous and previous[repo["id"]].get("readme_etag")
    }
    readmes = client.get_readmes([repo["full_name"] for repo in repos], etags=etags)
    rows = [
        _raw_row(
            run, category, query, repo, readmes.get(repo["full_name"]), previous.get(repo["id"])
        )
        for repo in repos
    ]
    counts = {
        "sanitized_fields": sum(row.pop("sanitized_fields") for row in rows)
        + sum(1 for row in rows if row["readme_note"] == "nul characters removed"),
        "readmes_truncated": sum(row["readme_truncated"] for row in rows),
        "readmes_fetched": sum(row["readme_status"] == "ok" for row in rows),
        "readmes_not_modified": sum(row["readme_status"] == "not_modified" for row in rows),
        "readmes_missing": sum(row["readme_status"] == "missing" for row in rows),
        "readmes_failed": sum(row["readme_status"] == "error" for row in rows),
    }
    return rows, counts


def fetch_language(
    client: GitHubClient,
    run: RunSettings,
    language: str,
    previous_readmes: PreviousReadmes | None = None,
) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """
    Search one language and fetch the READMEs of its top repositories.

    Returns the raw repository rows, the search page rows and the step's metrics.
    """
    started = time.monotonic()
    category = cfg.LANGUAGE_CATEGORIES[language]
    query = language_query(language, run.snapshot_date)
    result = client.search_repositories(query, limit=run.repo_limit, sort="stars", order="desc")
    repos = [repo for repo in result.items if repo.get("id") and repo.get("full_name")]
    rows, readme_counts = _with_readmes(client, run, category, query, repos, previous_readmes)
    metrics = {
        "category": category,
        "total_count": result.total_count,
        "incomplete_results": result.incomplete_results,
        "incomplete_pages": sum(page.incomplete_results for page in result.pages),
        "repos_fetched": len(rows),
        "items_without_id": len(result.items) - len(repos),
        **readme_counts,
        "seconds": round(time.monotonic() - started, 3),
    }
    log.info(
        "Fetched %d %s repositories (%d found in total), %d READMEs, %d without README in %.2fs",
        len(rows), language, result.total_count, readme_counts["readmes_fetched"],
        readme_counts["readmes_missing"], metrics["seconds"],
    )  # fmt: skip
    return rows, _page_rows(run, category, "repositories", result), metrics


def fetch_render(
    client: GitHubClient, run: RunSettings, previous_readmes: PreviousReadmes | None = None
) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """
    Find young projects that deploy with a root ``render.yaml`` and fetch their READMEs.

    Code search returns only a minimal repository object, so each hit's repository is fetched
    for its stars and dates; projects created before the window are dropped and the most
    starred ``repo_limit`` kept.
    """
    started = time.monotonic()
    category = cfg.RENDER_CATEGORY
    result = client.search_code(RENDER_CODE_QUERY, limit=RENDER_CODE_SEARCH_LIMIT)
    names = list(
        dict.fromkeys(
            item["repository"]["full_name"]
            for item in result.items
            if isinstance(item.get("repository"), Mapping) and item["repository"].get("full_name")
        )
    )

    def fetch_one(full_name: str) -> dict | None:
        try:
            return client.get_repository(full_name)
        except GitHubNotFound:
            log.warning("Repository %s from code search is gone; skipping it", full_name)
            return None

    with ThreadPoolExecutor(max_workers=REPOSITORY_WORKERS) as pool:
        repositories = [repo for repo in pool.map(fetch_one, names) if repo]

    created_since = dt.datetime.combine(
        run.snapshot_date - dt.timedelta(days=cfg.RENDER_CREATED_WINDOW_DAYS),
        dt.time(),
        tzinfo=dt.UTC,
    )
    in_window = [
        repo
        for repo in repositories
        if (created := _parse_created(repo)) is not None and created >= created_since
    ]
    in_window.sort(key=lambda repo: (-(repo.get("stargazers_count") or 0), repo.get("id") or 0))
    chosen = in_window[: run.repo_limit]
    rows, readme_counts = _with_readmes(
        client, run, category, RENDER_CODE_QUERY, chosen, previous_readmes
    )
    metrics = {
        "category": category,
        "code_hits": len(result.items),
        "incomplete_results": result.incomplete_results,
        "incomplete_pages": sum(page.incomplete_results for page in result.pages),
        "repositories_seen": len(repositories),
        "outside_window": len(repositories) - len(in_window),
        "repos_fetched": len(rows),
        **readme_counts,
        "seconds": round(time.monotonic() - started, 3),
    }
    log.info(
        "Fetched %d render projects from %d code hits (%d outside the window), %d READMEs "
        "in %.2fs",
        len(rows), len(result.items), metrics["outside_window"], readme_counts["readmes_fetched"],
        metrics["seconds"],
    )  # fmt: skip
    return rows, _page_rows(run, category, "code", result), metrics
