"""Tests for the GitHub replay server and its synthetic snapshot, over real loopback HTTP."""

from __future__ import annotations

import base64
import copy
import datetime
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from trender.github.replay import Fault, ReplayServer

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_PATH = ROOT / "include" / "replay" / "snapshot.json"
GENERATOR = ROOT / "include" / "replay" / "generate.py"
AS_OF = datetime.date(2026, 12, 3)
ANCHOR = datetime.date(2026, 6, 1)
SHIFT = datetime.timedelta(days=(AS_OF - ANCHOR).days)
TIMEOUT = 10  # seconds; every request in these tests is local
LANGUAGES = ("Python", "TypeScript", "Go")
MINIMAL_ONLY_ABSENT = (
    "stargazers_count",
    "created_at",
    "pushed_at",
    "language",
    "license",
    "topics",
)


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    with SNAPSHOT_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def repos(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["repo"] for entry in snapshot["repositories"]]


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer(as_of=AS_OF) as replay:
        yield replay


def served_time(timestamp: str, shift: datetime.timedelta = SHIFT) -> datetime.datetime:
    moment = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")
    return moment.replace(tzinfo=datetime.UTC) + shift


def served_date(timestamp: str) -> datetime.date:
    return served_time(timestamp).date()


def get(server: ReplayServer, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(server.url + path, timeout=TIMEOUT, **kwargs)


def search(server: ReplayServer, q: str, **params: Any) -> requests.Response:
    return get(server, "/search/repositories", params={"q": q, **params})


def entry_where(snapshot: dict[str, Any], check: Callable[[dict[str, Any]], bool]) -> dict:
    matches = [entry for entry in snapshot["repositories"] if check(entry)]
    assert matches, "the snapshot lacks the repository this test needs"
    return matches[0]


def readme_bytes(entry: dict[str, Any]) -> bytes:
    return base64.b64decode(entry["readme"]["content_b64"])


def parse_link(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}


def page_of(url: str) -> int:
    return int(re.search(r"[?&]page=(\d+)", url).group(1))


def in_trender_window(repo: dict[str, Any], language: str) -> bool:
    created_floor = AS_OF - datetime.timedelta(days=180)
    pushed_floor = AS_OF - datetime.timedelta(days=30)
    return (
        repo["language"] == language
        and not repo["fork"]
        and served_date(repo["created_at"]) > created_floor
        and served_date(repo["pushed_at"]) > pushed_floor
    )


@pytest.mark.parametrize("language", ["Python", "TypeScript", "Go", "python", "GO"])
def test_language_qualifier_matches_case_insensitively(
    server: ReplayServer, repos: list[dict[str, Any]], language: str
) -> None:
    expected = [
        r for r in repos if (r["language"] or "").lower() == language.lower() and not r["fork"]
    ]
    body = search(server, f"language:{language}", per_page=100).json()
    assert body["total_count"] == len(expected) > 0
    assert {item["language"].lower() for item in body["items"]} == {language.lower()}


D = datetime.date.fromisoformat
DATE_CASES = [
    ("created:>2026-06-06", "created_at", lambda d: d > D("2026-06-06")),
    ("created:>=2026-11-23", "created_at", lambda d: d >= D("2026-11-23")),
    ("created:<2026-06-06", "created_at", lambda d: d < D("2026-06-06")),
    ("created:<=2026-11-23", "created_at", lambda d: d <= D("2026-11-23")),
    ("created:2026-11-23", "created_at", lambda d: d == D("2026-11-23")),
    (
        "created:2026-09-01..2026-10-31",
        "created_at",
        lambda d: D("2026-09-01") <= d <= D("2026-10-31"),
    ),
    ("created:2026-09-01..*", "created_at", lambda d: d >= D("2026-09-01")),
    ("created:*..2026-09-01", "created_at", lambda d: d <= D("2026-09-01")),
    ("pushed:>2026-11-03", "pushed_at", lambda d: d > D("2026-11-03")),
    ("pushed:>=2026-11-20", "pushed_at", lambda d: d >= D("2026-11-20")),
    ("updated:<2026-12-02", "updated_at", lambda d: d < D("2026-12-02")),
]


@pytest.mark.parametrize(
    ("qualifier", "field", "check"), DATE_CASES, ids=[case[0] for case in DATE_CASES]
)
def test_date_qualifiers_compare_on_the_served_utc_date(
    server: ReplayServer,
    repos: list[dict[str, Any]],
    qualifier: str,
    field: str,
    check: Callable[[datetime.date], bool],
) -> None:
    candidates = [r for r in repos if not r["fork"]]
    expected = sum(1 for r in candidates if check(served_date(r[field])))
    assert 0 < expected < len(candidates), "the case must actually filter"
    assert search(server, qualifier).json()["total_count"] == expected


def test_date_qualifier_accepts_a_full_datetime(
    server: ReplayServer, snapshot: dict[str, Any], repos: list[dict[str, Any]]
) -> None:
    bound = served_time(ten_day_old(snapshot)["created_at"])
    text = bound.strftime("%Y-%m-%dT%H:%M:%SZ")
    after = sum(1 for r in repos if not r["fork"] and served_time(r["created_at"]) > bound)
    assert search(server, f"created:>{text}").json()["total_count"] == after
    assert search(server, f"created:>={text}").json()["total_count"] == after + 1


STAR_CASES = [
    ("stars:>1000", lambda s: s > 1000),
    ("stars:>=1043", lambda s: s >= 1043),
    ("stars:<50", lambda s: s < 50),
    ("stars:<=305", lambda s: s <= 305),
    ("stars:100..200", lambda s: 100 <= s <= 200),
    ("stars:1000..*", lambda s: s >= 1000),
    ("stars:*..99", lambda s: s <= 99),
    ("stars:1043", lambda s: s == 1043),
]


@pytest.mark.parametrize(("qualifier", "check"), STAR_CASES, ids=[c[0] for c in STAR_CASES])
def test_stars_qualifier(
    server: ReplayServer, repos: list[dict[str, Any]], qualifier: str, check: Callable[[int], bool]
) -> None:
    candidates = [r for r in repos if not r["fork"]]
    expected = sum(1 for r in candidates if check(r["stargazers_count"]))
    assert 0 < expected < len(candidates)
    assert search(server, qualifier).json()["total_count"] == expected


@pytest.mark.parametrize(
    ("qualifier", "keep"),
    [
        ("", lambda fork: not fork),
        ("fork:false", lambda fork: not fork),
        ("fork:true", lambda fork: True),
        ("fork:only", lambda fork: fork),
    ],
    ids=["default", "false", "true", "only"],
)
def test_fork_qualifier(
    server: ReplayServer, repos: list[dict[str, Any]], qualifier: str, keep: Callable[[bool], bool]
) -> None:
    python = [r for r in repos if r["language"] == "Python"]
    expected = [r["id"] for r in python if keep(r["fork"])]
    body = search(server, f"language:Python {qualifier}".strip(), per_page=100).json()
    assert body["total_count"] == len(expected) > 0
    assert sorted(item["id"] for item in body["items"]) == sorted(expected)


@pytest.mark.parametrize("archived", [True, False])
def test_archived_qualifier(
    server: ReplayServer, repos: list[dict[str, Any]], archived: bool
) -> None:
    expected = [r["id"] for r in repos if not r["fork"] and r["archived"] is archived]
    body = search(server, f"archived:{str(archived).lower()}", per_page=100)
    assert body.json()["total_count"] == len(expected) > 0


def test_free_text_matches_name_or_description(
    server: ReplayServer, repos: list[dict[str, Any]]
) -> None:
    word = "ledger"
    expected = [
        r
        for r in repos
        if not r["fork"] and (word in r["name"] or word in (r["description"] or "").lower())
    ]
    assert search(server, f"{word} is:public").json()["total_count"] == len(expected) > 0


@pytest.mark.parametrize("language", LANGUAGES)
def test_trender_query_returns_the_young_top_25_and_excludes_the_rest(
    server: ReplayServer, repos: list[dict[str, Any]], language: str
) -> None:
    created = (AS_OF - datetime.timedelta(days=180)).isoformat()
    pushed = (AS_OF - datetime.timedelta(days=30)).isoformat()
    q = f"language:{language} created:>{created} pushed:>{pushed} fork:false"
    body = search(server, q, sort="stars", order="desc", per_page=25).json()

    window = sorted(
        (r for r in repos if in_trender_window(r, language)), key=lambda r: -r["stargazers_count"]
    )
    assert body["total_count"] == len(window) >= 40
    assert [item["id"] for item in body["items"]] == [r["id"] for r in window[:25]]
    unfiltered = sorted(
        (r for r in repos if r["language"] == language), key=lambda r: -r["stargazers_count"]
    )
    excluded_leaders = [r for r in unfiltered[:3] if not in_trender_window(r, language)]
    assert excluded_leaders, "high-star repos outside the windows must exist to catch a leak"
    assert not {r["id"] for r in excluded_leaders} & {item["id"] for item in body["items"]}


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_sort_by_stars(server: ReplayServer, order: str) -> None:
    items = search(server, "language:Go", sort="stars", order=order, per_page=100).json()["items"]
    stars = [item["stargazers_count"] for item in items]
    assert stars == sorted(stars, reverse=order == "desc")
    assert len(set(stars)) == len(stars)


def test_search_items_carry_a_score(server: ReplayServer) -> None:
    item = search(server, "language:Go", per_page=1).json()["items"][0]
    assert item["score"] == 1.0
    assert item["full_name"].count("/") == 1


def test_per_page_is_clamped_to_100_and_pages_continue(
    server: ReplayServer, repos: list[dict[str, Any]]
) -> None:
    everything = search(server, "fork:true", sort="stars", per_page=500).json()
    assert everything["total_count"] == len(repos) > 100
    assert len(everything["items"]) == 100
    second = search(server, "fork:true", sort="stars", per_page=100, page=2).json()
    assert len(second["items"]) == len(repos) - 100
    ordered = sorted(repos, key=lambda r: -r["stargazers_count"])
    assert [item["id"] for item in second["items"]] == [r["id"] for r in ordered[100:]]


def test_default_page_size_is_30(server: ReplayServer) -> None:
    assert len(search(server, "fork:true").json()["items"]) == 30


def test_link_header_relations(server: ReplayServer, repos: list[dict[str, Any]]) -> None:
    total = len(repos)
    last = -(-total // 10)
    first_page = search(server, "fork:true", sort="stars", per_page=10)
    links = parse_link(first_page.headers["Link"])
    assert set(links) == {"next", "last"}
    assert (page_of(links["next"]), page_of(links["last"])) == (2, last)
    assert links["next"].startswith(f"{server.url}/search/repositories?q=fork%3Atrue")
    assert "sort=stars" in links["next"]
    assert "per_page=10" in links["next"]

    middle = parse_link(search(server, "fork:true", per_page=10, page=3).headers["Link"])
    assert {rel: page_of(url) for rel, url in middle.items()} == {
        "prev": 2,
        "next": 4,
        "last": last,
        "first": 1,
    }
    final = parse_link(search(server, "fork:true", per_page=10, page=last).headers["Link"])
    assert {rel: page_of(url) for rel, url in final.items()} == {"prev": last - 1, "first": 1}
    single = search(server, "language:Go", per_page=100)
    assert "Link" not in single.headers


def test_page_past_the_1000th_result_is_rejected(server: ReplayServer) -> None:
    response = search(server, "fork:true", per_page=1, page=1001)
    assert response.status_code == 422
    assert response.json() == {
        "message": "Only the first 1000 search results are available",
        "documentation_url": "https://docs.github.com/v3/search/",
    }
    assert search(server, "fork:true", per_page=1, page=1000).status_code == 200


@pytest.fixture
def big_server(snapshot: dict[str, Any]) -> Iterator[ReplayServer]:
    template = snapshot["repositories"][0]
    entries = []
    for index in range(1200):
        entry = copy.deepcopy(template)
        entry["repo"].update(
            id=10_000 + index, stargazers_count=5_000 - index, full_name=f"bulk-org/r{index}"
        )
        entries.append(entry)
    big = {**snapshot, "repositories": entries, "days": {}}
    with ReplayServer(big, as_of=AS_OF) as replay:
        yield replay


def test_search_cap_on_a_large_result_set(big_server: ReplayServer) -> None:
    first = search(big_server, "fork:true", per_page=30)
    assert first.json()["total_count"] == 1200
    assert page_of(parse_link(first.headers["Link"])["last"]) == 34
    tail = search(big_server, "fork:true", per_page=30, page=34).json()
    assert len(tail["items"]) == 10
    assert tail["items"][-1]["id"] == 10_999
    hundred = search(big_server, "fork:true", per_page=100, page=10)
    assert hundred.status_code == 200
    assert "next" not in parse_link(hundred.headers["Link"])
    assert search(big_server, "fork:true", per_page=100, page=11).status_code == 422


@pytest.mark.parametrize(
    ("params", "code"),
    [({}, "missing"), ({"q": "  "}, "missing"), ({"q": "language:Go colour:blue"}, "invalid")],
    ids=["no-q", "blank-q", "unknown-qualifier"],
)
def test_invalid_queries_answer_422(server: ReplayServer, params: dict, code: str) -> None:
    response = get(server, "/search/repositories", params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Validation Failed"
    assert body["documentation_url"] == "https://docs.github.com/v3/search/"
    assert body["errors"][0]["resource"] == "Search"
    assert body["errors"][0]["field"] == "q"
    assert body["errors"][0]["code"] == code


def render_entries(snapshot: dict[str, Any], include_forks: bool = False) -> list[dict]:
    return [
        entry
        for entry in snapshot["repositories"]
        if "render.yaml" in entry["root_files"] and (include_forks or not entry["repo"]["fork"])
    ]


def test_code_search_finds_root_blueprints_with_minimal_repositories(
    server: ReplayServer, snapshot: dict[str, Any]
) -> None:
    expected = sorted(entry["repo"]["id"] for entry in render_entries(snapshot))
    response = get(
        server, "/search/code", params={"q": "filename:render.yaml path:/", "per_page": 100}
    )
    body = response.json()
    assert response.headers["x-ratelimit-resource"] == "code_search"
    assert body["total_count"] == len(expected) >= 30
    assert [item["repository"]["id"] for item in body["items"]] == expected
    item = body["items"][0]
    assert (item["name"], item["path"]) == ("render.yaml", "render.yaml")
    assert set(item) == {"name", "path", "sha", "url", "git_url", "html_url", "repository", "score"}
    repository = item["repository"]
    for key in ("id", "node_id", "name", "full_name", "private", "owner", "html_url", "fork"):
        assert key in repository
    assert repository["owner"]["login"] == repository["full_name"].split("/")[0]
    assert repository["owner"]["type"] in ("User", "Organization")
    for key in MINIMAL_ONLY_ABSENT:
        assert key not in repository


def test_code_search_path_root_skips_nested_blueprints(
    server: ReplayServer, snapshot: dict[str, Any]
) -> None:
    nested = [e["repo"]["id"] for e in snapshot["repositories"] if e.get("nested_files")]
    assert len(nested) >= 2
    root_only = get(server, "/search/code", params={"q": "filename:render.yaml path:/"}).json()
    found = {item["repository"]["id"] for item in root_only["items"]}
    assert not found & set(nested)
    anywhere = get(
        server, "/search/code", params={"q": "filename:render.yaml", "per_page": 100}
    ).json()
    assert set(nested) <= {item["repository"]["id"] for item in anywhere["items"]}
    deploy = get(server, "/search/code", params={"q": "filename:render.yaml path:deploy"}).json()
    assert [item["path"] for item in deploy["items"]] == ["deploy/render.yaml"]


def test_code_search_language_yaml_and_forks(
    server: ReplayServer, snapshot: dict[str, Any]
) -> None:
    yaml_root = get(server, "/search/code", params={"q": "language:yaml path:/", "per_page": 100})
    names = {item["name"] for item in yaml_root.json()["items"]}
    assert names == {"render.yaml", "docker-compose.yaml"}
    with_forks = get(
        server,
        "/search/code",
        params={"q": "filename:render.yaml path:/ fork:true", "per_page": 100},
    ).json()
    assert with_forks["total_count"] == len(render_entries(snapshot, include_forks=True))
    assert with_forks["total_count"] > len(render_entries(snapshot))


def test_code_search_repo_qualifier(server: ReplayServer, snapshot: dict[str, Any]) -> None:
    full_name = render_entries(snapshot)[3]["repo"]["full_name"]
    body = get(server, "/search/code", params={"q": f"filename:render.yaml repo:{full_name}"})
    assert [item["repository"]["full_name"] for item in body.json()["items"]] == [full_name]


def test_code_search_can_require_a_token() -> None:
    with ReplayServer(as_of=AS_OF, require_token_for_code_search=True) as replay:
        anonymous = get(replay, "/search/code", params={"q": "filename:render.yaml"})
        assert anonymous.status_code == 401
        assert anonymous.json() == {
            "message": "Requires authentication",
            "documentation_url": "https://docs.github.com/rest/search/search#search-code",
        }
        signed = get(
            replay,
            "/search/code",
            params={"q": "filename:render.yaml"},
            headers={"Authorization": "Bearer test-token"},
        )
        assert signed.status_code == 200


def test_get_repository(server: ReplayServer, repos: list[dict[str, Any]]) -> None:
    repo = repos[0]
    response = get(server, f"/repos/{repo['full_name']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == repo["id"]
    assert "score" not in body
    assert body["created_at"] == served_time(repo["created_at"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert get(server, f"/repositories/{repo['id']}").json()["full_name"] == repo["full_name"]
    upper = get(server, f"/repos/{repo['full_name'].upper()}")
    assert upper.status_code == 200


def test_unknown_repository_is_404(server: ReplayServer) -> None:
    response = get(server, "/repos/nobody-here/nothing-here")
    assert response.status_code == 404
    assert response.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
        "status": "404",
    }
    assert get(server, "/repositories/1").status_code == 404
    assert get(server, "/no/such/route").status_code == 404


EDGE_READMES = {
    "rst": lambda data, path: path == "README.rst",
    "bom": lambda data, path: data.startswith(b"\xef\xbb\xbf"),
    "nul": lambda data, path: b"\x00" in data,
    "latin1": lambda data, path: b"\xe9" in data and not is_utf8(data),
    "non-ascii": lambda data, path: is_utf8(data) and "漢字" in data.decode("utf-8"),
    "large": lambda data, path: len(data) >= 250_000,
}


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("kind", list(EDGE_READMES))
def test_readme_is_base64_wrapped_at_60_and_decodes_exactly(
    server: ReplayServer, snapshot: dict[str, Any], kind: str
) -> None:
    check = EDGE_READMES[kind]
    entry = entry_where(
        snapshot, lambda e: e["readme"] is not None and check(readme_bytes(e), e["readme"]["path"])
    )
    expected = readme_bytes(entry)
    response = get(server, f"/repos/{entry['repo']['full_name']}/readme")
    assert response.status_code == 200
    body = response.json()
    assert (body["type"], body["encoding"]) == ("file", "base64")
    assert body["path"] == body["name"] == entry["readme"]["path"]
    assert body["size"] == len(expected)
    content = body["content"]
    assert content.endswith("\n")
    lines = content.split("\n")[:-1]
    assert all(len(line) == 60 for line in lines[:-1])
    assert 0 < len(lines[-1]) <= 60
    assert base64.b64decode(content) == expected
    assert set(body["_links"]) == {"self", "git", "html"}
    assert body["download_url"].endswith("/" + entry["readme"]["path"])


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.github.raw",
        "application/vnd.github.v3.raw",
        "application/vnd.github.raw+json",
    ],
)
def test_readme_raw_media_type(server: ReplayServer, snapshot: dict[str, Any], accept: str) -> None:
    entry = entry_where(snapshot, lambda e: e["readme"] is not None and b"\x00" in readme_bytes(e))
    response = get(
        server, f"/repos/{entry['repo']['full_name']}/readme", headers={"Accept": accept}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.github.raw; charset=utf-8"
    assert response.content == readme_bytes(entry)


def test_missing_readme_is_404(server: ReplayServer, snapshot: dict[str, Any]) -> None:
    entry = entry_where(snapshot, lambda e: e["readme"] is None)
    response = get(server, f"/repos/{entry['repo']['full_name']}/readme")
    assert response.status_code == 404
    assert response.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/repos/contents#get-a-repository-readme",
        "status": "404",
    }


def test_etag_and_304_do_not_spend_core_budget(
    server: ReplayServer, snapshot: dict[str, Any]
) -> None:
    entry = entry_where(snapshot, lambda e: e["readme"] is not None)
    path = f"/repos/{entry['repo']['full_name']}/readme"
    first = get(server, path)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{64}"', etag)
    remaining = int(first.headers["x-ratelimit-remaining"])
    for header in (etag, f"W/{etag}", f'"other", {etag}'):
        cached = get(server, path, headers={"If-None-Match": header})
        assert cached.status_code == 304
        assert cached.content == b""
        assert cached.headers["ETag"] == etag
        assert int(cached.headers["x-ratelimit-remaining"]) == remaining
    changed = get(server, path, headers={"If-None-Match": '"stale"'})
    assert changed.status_code == 200
    assert int(changed.headers["x-ratelimit-remaining"]) == remaining - 1


@pytest.mark.parametrize(
    ("path", "params", "resource", "limit"),
    [
        ("/search/repositories", {"q": "language:Go"}, "search", 30),
        ("/search/code", {"q": "filename:render.yaml"}, "code_search", 10),
        ("/repos/nobody-here/nothing-here", {}, "core", 5000),
    ],
    ids=["search", "code_search", "core"],
)
def test_rate_limit_headers_per_resource(
    server: ReplayServer, path: str, params: dict, resource: str, limit: int
) -> None:
    for used in (1, 2):
        response = get(server, path, params=params)
        assert response.headers["x-ratelimit-resource"] == resource
        assert response.headers["x-ratelimit-limit"] == str(limit)
        assert response.headers["x-ratelimit-used"] == str(used)
        assert response.headers["x-ratelimit-remaining"] == str(limit - used)
        assert int(response.headers["x-ratelimit-reset"]) > time.time()
    for name in ("X-GitHub-Request-Id", "Date", "X-GitHub-Media-Type"):
        assert response.headers[name]
    assert response.headers["X-GitHub-Api-Version-Selected"] == "2022-11-28"


def test_rate_limit_endpoint_reports_without_spending(server: ReplayServer) -> None:
    search(server, "language:Go")
    first = get(server, "/rate_limit").json()
    second = get(server, "/rate_limit").json()
    assert first == second
    assert set(first["resources"]) >= {"core", "search", "code_search", "graphql"}
    assert first["resources"]["search"]["used"] == 1
    assert first["resources"]["search"]["remaining"] == 29
    assert first["rate"] == first["resources"]["core"]


def test_exhausted_budget_answers_403_until_the_window_resets() -> None:
    clock = FakeClock()
    with ReplayServer(as_of=AS_OF, clock=clock, limits={"search": 2}) as replay:
        ids = set()
        for _ in range(2):
            response = search(replay, "language:Go")
            assert response.status_code == 200
            ids.add(response.headers["X-GitHub-Request-Id"])
        blocked = search(replay, "language:Go")
        assert blocked.status_code == 403
        assert blocked.json()["message"].startswith("API rate limit exceeded for user ID 1.")
        assert blocked.headers["X-GitHub-Request-Id"] in blocked.json()["message"]
        assert blocked.json()["documentation_url"].endswith("rate-limits-for-the-rest-api")
        assert blocked.headers["x-ratelimit-remaining"] == "0"
        assert int(blocked.headers["x-ratelimit-reset"]) == int(clock.now) + 60
        assert len(ids | {blocked.headers["X-GitHub-Request-Id"]}) == 3
        assert get(replay, "/repos/nobody-here/nothing-here").status_code == 404
        clock.advance(61)
        again = search(replay, "language:Go")
        assert again.status_code == 200
        assert again.headers["x-ratelimit-used"] == "1"


def ten_day_old(snapshot: dict[str, Any]) -> dict[str, Any]:
    return entry_where(
        snapshot,
        lambda e: (
            e["repo"]["language"] == "Python" and e["repo"]["created_at"].startswith("2026-05-22")
        ),
    )["repo"]


def test_timestamps_are_shifted_to_the_as_of_date(
    server: ReplayServer, snapshot: dict[str, Any]
) -> None:
    repo = ten_day_old(snapshot)
    served = get(server, f"/repos/{repo['full_name']}").json()
    assert served["created_at"] == "2026-11-23" + repo["created_at"][10:]
    assert served["pushed_at"] == served_time(repo["pushed_at"]).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_shift_stays_fixed_when_day_and_date_advance_together(snapshot: dict[str, Any]) -> None:
    repo = ten_day_old(snapshot)
    with ReplayServer(as_of=datetime.date(2026, 12, 4), day=1) as replay:
        served = get(replay, f"/repositories/{repo['id']}").json()
    assert served["created_at"] == "2026-11-23" + repo["created_at"][10:]


def day_changes(snapshot: dict[str, Any], day: int) -> dict[int, dict[str, Any]]:
    return {change["id"]: change["set"] for change in snapshot["days"][str(day)]["changes"]}


def test_day_one_applies_stars_description_and_rename(
    server: ReplayServer, snapshot: dict[str, Any]
) -> None:
    changes = day_changes(snapshot, 1)
    original = {e["repo"]["id"]: e["repo"] for e in snapshot["repositories"]}
    renamed_id = next(i for i, s in changes.items() if "full_name" in s)
    described_id = next(i for i, s in changes.items() if "description" in s)
    grown_id = next(i for i, s in changes.items() if set(s) == {"stargazers_count", "updated_at"})

    server.set_day(1)
    server.set_as_of(datetime.date(2026, 12, 4))
    grown = get(server, f"/repositories/{grown_id}").json()
    assert grown["stargazers_count"] == changes[grown_id]["stargazers_count"]
    assert grown["stargazers_count"] > original[grown_id]["stargazers_count"]
    assert grown["watchers_count"] == grown["stargazers_count"]
    assert grown["updated_at"].startswith("2026-12-04T")
    described = get(server, f"/repositories/{described_id}").json()
    assert described["description"] == changes[described_id]["description"]

    old_name = original[renamed_id]["full_name"]
    new_name = changes[renamed_id]["full_name"]
    moved = get(server, f"/repos/{old_name}", allow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["Location"] == f"{server.url}/repositories/{renamed_id}"
    assert moved.json()["message"] == "Moved Permanently"
    followed = get(server, f"/repos/{old_name}")
    assert followed.status_code == 200
    assert followed.json()["full_name"] == new_name
    assert followed.json()["html_url"] == f"https://github.com/{new_name}"
    assert followed.json()["url"] == f"https://api.github.com/repos/{new_name}"
    assert (
        get(server, f"/repos/{old_name}/readme")
        .json()["url"]
        .startswith(f"https://api.github.com/repos/{new_name}/")
    )


def test_absent_repository_disappears_for_one_day(
    server: ReplayServer, snapshot: dict[str, Any]
) -> None:
    (absent_id,) = snapshot["days"]["1"]["absent"]
    repo = next(e["repo"] for e in snapshot["repositories"] if e["repo"]["id"] == absent_id)
    query = f"language:{repo['language']}"

    def found() -> bool:
        items = search(server, query, per_page=100).json()["items"]
        return absent_id in {item["id"] for item in items}

    assert found()
    server.set_day(1)
    assert get(server, f"/repos/{repo['full_name']}").status_code == 404
    assert get(server, f"/repositories/{absent_id}").status_code == 404
    assert not found()
    server.set_day(2)
    assert get(server, f"/repos/{repo['full_name']}").status_code == 200
    assert found()


def test_day_two_replaces_a_readme(server: ReplayServer, snapshot: dict[str, Any]) -> None:
    changes = day_changes(snapshot, 2)
    (repo_id,) = [i for i, s in changes.items() if "readme" in s]
    expected = base64.b64decode(changes[repo_id]["readme"]["content_b64"])
    before = get(server, f"/repositories/{repo_id}/readme")
    server.set_day(2)
    after = get(server, f"/repositories/{repo_id}/readme")
    assert base64.b64decode(after.json()["content"]) == expected
    assert base64.b64decode(before.json()["content"]) != expected
    assert after.headers["ETag"] != before.headers["ETag"]


def test_injected_faults_are_used_in_order_then_normal_service_resumes(
    server: ReplayServer, repos: list[dict[str, Any]]
) -> None:
    path = f"/repos/{repos[0]['full_name']}/readme"
    server.inject(
        "/repos/*/readme",
        [
            Fault(502, {"message": "Server Error"}),
            Fault(503, b"<html>unicorn</html>", {"Content-Type": "text/html", "Retry-After": "1"}),
        ],
    )
    first = get(server, path)
    assert (first.status_code, first.json()) == (502, {"message": "Server Error"})
    second = get(server, path)
    assert second.status_code == 503
    assert second.headers["Retry-After"] == "1"
    assert second.content == b"<html>unicorn</html>"
    assert get(server, path).status_code == 200
    assert [entry.status for entry in server.requests] == [502, 503, 200]
    assert get(server, f"/repos/{repos[0]['full_name']}").status_code == 200


def test_dropped_connection_and_delay(server: ReplayServer, repos: list[dict[str, Any]]) -> None:
    path = f"/repos/{repos[1]['full_name']}"
    server.inject("/repos/*", [Fault(drop=True), Fault(200, {}, delay_seconds=1.0)])
    with pytest.raises(requests.ConnectionError):
        get(server, path)
    with pytest.raises(requests.Timeout):
        requests.get(server.url + path, timeout=0.2)
    assert get(server, path).json()["id"] == repos[1]["id"]
    assert server.requests[0].status == 0


def test_latency_is_added_to_every_response(server: ReplayServer) -> None:
    server.latency_seconds = 0.3
    started = time.monotonic()
    get(server, "/rate_limit")
    assert time.monotonic() - started >= 0.3


def test_request_log_counts_paths_and_never_keeps_the_token(server: ReplayServer) -> None:
    secret = "ghp_not-a-real-token-0123456789"
    get(server, "/user", headers={"Authorization": f"token {secret}"})
    search(server, "language:Go", per_page=5)
    search(server, "language:Python")
    assert server.count("/search/") == 2
    assert server.count("/user") == 1
    user, first_search, _ = server.requests
    assert (user.has_authorization, user.status) == (True, 200)
    assert first_search.has_authorization is False
    assert first_search.query == {"q": "language:Go", "per_page": "5"}
    assert secret not in repr(server.requests)
    server.reset_log()
    assert server.requests == []


def test_user_endpoint_requires_credentials(server: ReplayServer) -> None:
    anonymous = get(server, "/user")
    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "Requires authentication"
    signed = get(server, "/user", headers={"Authorization": "Bearer x"}).json()
    assert (signed["login"], signed["id"], signed["type"]) == ("replay-user", 1, "User")


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trender.github.replay",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"replay server listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert port_file.read_text().strip() == match.group(1)
        response = requests.get(f"http://127.0.0.1:{match.group(1)}/rate_limit", timeout=TIMEOUT)
        assert response.json()["resources"]["core"]["limit"] == 5000
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_refuses_a_remote_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trender.github.replay", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr


def test_generator_is_deterministic_and_matches_the_committed_snapshot(tmp_path: Path) -> None:
    outputs = []
    for name in ("first.json", "second.json"):
        target = tmp_path / name
        subprocess.run(
            [sys.executable, str(GENERATOR), "--output", str(target)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] == SNAPSHOT_PATH.read_bytes()


def anchor_age(timestamp: str) -> int:
    return (ANCHOR - datetime.date.fromisoformat(timestamp[:10])).days


def anchor_window(repo: dict[str, Any]) -> bool:
    return anchor_age(repo["created_at"]) < 180 and anchor_age(repo["pushed_at"]) < 30


def test_snapshot_is_marked_synthetic_and_has_distinct_stars(snapshot: dict[str, Any]) -> None:
    assert snapshot["format"] == 1
    assert snapshot["synthetic"] is True
    assert snapshot["anchor_date"] == ANCHOR.isoformat()
    stars = [e["repo"]["stargazers_count"] for e in snapshot["repositories"]]
    assert len(stars) == len(set(stars))
    ids = [e["repo"]["id"] for e in snapshot["repositories"]]
    assert ids == sorted(set(ids))


@pytest.mark.parametrize("language", LANGUAGES)
def test_snapshot_language_coverage(snapshot: dict[str, Any], language: str) -> None:
    repos = [e["repo"] for e in snapshot["repositories"] if e["repo"]["language"] == language]
    window = [r for r in repos if anchor_window(r) and not r["fork"]]
    assert len(window) >= 40
    top = sorted(window, key=lambda r: -r["stargazers_count"])[:25]
    ceiling = top[0]["stargazers_count"]
    assert any(
        anchor_age(r["created_at"]) >= 200 and r["stargazers_count"] > ceiling for r in repos
    )
    assert any(anchor_age(r["pushed_at"]) >= 45 and r["stargazers_count"] > ceiling for r in repos)
    assert any(r["fork"] and anchor_window(r) and r["stargazers_count"] > ceiling for r in repos)


def test_snapshot_special_ages_in_top_25(snapshot: dict[str, Any]) -> None:
    ages = set()
    for language in LANGUAGES:
        window = [
            e["repo"]
            for e in snapshot["repositories"]
            if e["repo"]["language"] == language
            and anchor_window(e["repo"])
            and not e["repo"]["fork"]
        ]
        top = sorted(window, key=lambda r: -r["stargazers_count"])[:25]
        ages |= {anchor_age(r["created_at"]) for r in top}
    assert {10, 14, 15, 74} <= ages
    all_ages = {anchor_age(e["repo"]["created_at"]) for e in snapshot["repositories"]}
    assert {1, 179} <= all_ages


def test_snapshot_render_blueprints(snapshot: dict[str, Any]) -> None:
    render = [e for e in snapshot["repositories"] if e["root_files"] == ["render.yaml"]]
    assert len(render) >= 30
    young = [e for e in render if anchor_age(e["repo"]["created_at"]) < 548]
    assert len(young) > len(render) // 2
    assert len(render) - len(young) >= 2
    languages = {"Python", "TypeScript", "Go", "JavaScript", "HTML", None}
    assert {e["repo"]["language"] for e in render} >= languages
    in_top = []
    for language in LANGUAGES:
        window = [
            e
            for e in snapshot["repositories"]
            if e["repo"]["language"] == language
            and anchor_window(e["repo"])
            and not e["repo"]["fork"]
        ]
        top = sorted(window, key=lambda e: -e["repo"]["stargazers_count"])[:25]
        in_top += [e for e in top if "render.yaml" in e["root_files"]]
    assert len(in_top) == 1
    nested = [e for e in snapshot["repositories"] if e.get("nested_files")]
    assert len(nested) >= 2
    assert all("render.yaml" not in e["root_files"] for e in nested)


def top_25_entries(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    entries = []
    for language in LANGUAGES:
        window = [
            e
            for e in snapshot["repositories"]
            if e["repo"]["language"] == language
            and anchor_window(e["repo"])
            and not e["repo"]["fork"]
        ]
        entries += sorted(window, key=lambda e: -e["repo"]["stargazers_count"])[:25]
    return entries


EDGE_CASES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "description null": lambda e: e["repo"]["description"] is None,
    "license null": lambda e: e["repo"]["license"] is None,
    "homepage null": lambda e: e["repo"]["homepage"] is None,
    "homepage empty": lambda e: e["repo"]["homepage"] == "",
    "topics empty": lambda e: e["repo"]["topics"] == [],
    "no readme": lambda e: e["readme"] is None,
    "readme rst": lambda e: e["readme"] is not None and e["readme"]["path"] == "README.rst",
    "readme non-ascii": lambda e: (
        e["readme"] is not None
        and is_utf8(readme_bytes(e))
        and "漢字" in readme_bytes(e).decode("utf-8")
    ),
    "readme bom": lambda e: e["readme"] is not None and readme_bytes(e)[:3] == b"\xef\xbb\xbf",
    "readme latin-1": lambda e: e["readme"] is not None and not is_utf8(readme_bytes(e)),
    "readme nul": lambda e: e["readme"] is not None and b"\x00" in readme_bytes(e),
    "readme large": lambda e: e["readme"] is not None and len(readme_bytes(e)) >= 290_000,
    "archived": lambda e: e["repo"]["archived"] is True,
    "organization owner": lambda e: e["repo"]["owner"]["type"] == "Organization",
    "user owner": lambda e: e["repo"]["owner"]["type"] == "User",
}


@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_snapshot_edge_case_is_served_by_a_main_search(snapshot: dict[str, Any], case: str) -> None:
    assert any(EDGE_CASES[case](entry) for entry in top_25_entries(snapshot))


def test_snapshot_has_a_fork_inside_the_windows(snapshot: dict[str, Any]) -> None:
    assert any(e["repo"]["fork"] and anchor_window(e["repo"]) for e in snapshot["repositories"])


def test_snapshot_repository_shape(snapshot: dict[str, Any]) -> None:
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    for entry in snapshot["repositories"]:
        repo = entry["repo"]
        assert repo["html_url"] == f"https://github.com/{repo['full_name']}"
        assert repo["url"] == f"https://api.github.com/repos/{repo['full_name']}"
        assert repo["owner"]["login"] == repo["full_name"].split("/")[0]
        for key in ("created_at", "updated_at", "pushed_at"):
            assert stamp.fullmatch(repo[key])
        assert repo["created_at"] <= repo["pushed_at"] <= repo["updated_at"] < "2026-06-01T12"
        if repo["license"] is not None:
            assert set(repo["license"]) == {"key", "name", "spdx_id", "url", "node_id"}
