"""Generate the synthetic GitHub snapshot that the Trender replay server serves.

Every organisation, user, repository, description and README in the output is invented by this
script from a fixed random seed; none of it describes a real person or project. The output is
deterministic: the same seed always gives a byte-identical file, and no wall-clock time is read.

Timestamps are written relative to ``ANCHOR_DATE`` (day 0). The replay server shifts them so the
snapshot reads as current on whatever date it is served. Run it as::

    python include/replay/generate.py [--output PATH] [--seed N]
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SNAPSHOT_FORMAT = 1  # bump when the layout of snapshot.json changes incompatibly
DEFAULT_SEED = 20260601  # any fixed value works; this one keeps the committed file reproducible
ANCHOR_DATE = datetime.date(2026, 6, 1)  # day 0 of the snapshot; all ages are measured from here
DEFAULT_OUTPUT = Path(__file__).with_name("snapshot.json")

SEARCH_LANGUAGES = ("Python", "TypeScript", "Go")  # the languages Trender searches for
IN_WINDOW_PER_LANGUAGE = 44  # a top 25 per language plus enough spare rows to rank 50
CREATED_WINDOW_DAYS = 180  # Trender's language search keeps repos created in the last 180 days
PUSHED_WINDOW_DAYS = 30  # ... and pushed in the last 30 days
RENDER_WINDOW_DAYS = 548  # the Render search keeps repos created in the last 18 months
MAX_IN_WINDOW_PUSH_AGE = 27  # stay clear of the 30-day edge so > and >= give the same answer
LARGE_README_BYTES = 300_000  # big enough to exercise streaming and size limits in the client
DAY_CHANGE_LATEST_HOUR = 11  # day-N activity happens before the 14:00 UTC scheduled run
SPECIAL_AGES = (10, 14, 15, 74)  # the ages the scoring tests rely on; used by named repos only


def words(text: str) -> tuple[str, ...]:
    """Split a space-separated word list."""
    return tuple(text.split())


API_ROOT = "https://api.github.com"
WEB_ROOT = "https://github.com"

ORG_WORDS = words(
    "quillwork nimbus ferrylight lumen cobaltine ternstone marrowgate saffronbyte brindle "
    "wickfield harborline juniper flintlock mossbank emberfall pikestaff vellum orchidware "
    "galewind rookery tidewell copperleaf slatehouse birchpoint"
)
ORG_SUFFIXES = ("-labs", "-works", "-collective", "-systems", "-foundry", "-hq", "-io")
USER_WORDS_A = words(
    "kettle driftwood paper lantern static mellow granite velvet hollow signal pocket amber "
    "cinder quiet rapid sable"
)
USER_WORDS_B = words("fox otter heron finch badger wren moth marten newt lynx plover vole")
NAME_HEADS = words(
    "quill ferry lattice beacon loom quarry spindle tally prism rivet cinder sieve mortar "
    "keel bramble cask dovetail gimbal halyard ingot jetty kiln lodestar mantle nib oriel "
    "plinth quoin ratchet sextant trellis umber vane winch yarrow zephyr"
)
NAME_TAILS = words(
    "relay ledger forge cache kit flow mesh scope bench press sync lens vault graph tap grid "
    "dock line run shelf"
)
THINGS = {
    "Python": (
        "async task queue",
        "dataframe validator",
        "notebook linter",
        "feature store client",
        "tiny vector index",
        "ETL toolkit",
        "CLI for tabular diffs",
        "agent evaluation harness",
        "pydantic schema registry",
        "log sampler",
    ),
    "TypeScript": (
        "type-safe router",
        "form state library",
        "edge function toolkit",
        "design token compiler",
        "React data grid",
        "realtime presence SDK",
        "schema-first API client",
        "markdown editor",
        "feature flag dashboard",
        "build cache server",
    ),
    "Go": (
        "service mesh sidecar",
        "static site builder",
        "metrics exporter",
        "terminal UI kit",
        "S3-compatible proxy",
        "job scheduler",
        "DNS toolkit",
        "container image scanner",
        "rate limiter",
        "key-value store",
    ),
    "JavaScript": ("chat widget", "landing page starter", "webhook relay", "image optimiser"),
    "HTML": ("status page template", "documentation theme", "portfolio starter"),
    "None": ("deployment blueprint collection", "infrastructure examples", "starter kit"),
}
QUALITIES = words(
    "Fast Minimal Typed Batteries-included Zero-config Composable Tiny Pluggable Self-hosted "
    "Declarative"
)
AUDIENCES = (
    "small teams",
    "data engineers",
    "edge workers",
    "hobby clusters",
    "static sites",
    "internal tools",
    "CI pipelines",
    "home labs",
)
TOPIC_POOL = words(
    "cli devtools api automation self-hosted observability database web llm testing "
    "performance developer-experience open-source render docker"
)
LICENSES = (
    ("mit", "MIT License", "MIT", "MDc6TGljZW5zZTEz"),
    ("apache-2.0", "Apache License 2.0", "Apache-2.0", "MDc6TGljZW5zZTI="),
    ("bsd-3-clause", 'BSD 3-Clause "New" or "Revised" License', "BSD-3-Clause", "MDc6TGljZW5zZTU="),
    ("gpl-3.0", "GNU General Public License v3.0", "GPL-3.0", "MDc6TGljZW5zZTk="),
    ("mpl-2.0", "Mozilla Public License 2.0", "MPL-2.0", "MDc6TGljZW5zZTE0"),
)
OWNER_URL_TEMPLATES = (
    ("followers_url", "/followers"),
    ("following_url", "/following{/other_user}"),
    ("gists_url", "/gists{/gist_id}"),
    ("starred_url", "/starred{/owner}{/repo}"),
    ("subscriptions_url", "/subscriptions"),
    ("organizations_url", "/orgs"),
    ("repos_url", "/repos"),
    ("events_url", "/events{/privacy}"),
    ("received_events_url", "/received_events"),
)
REPO_URL_TEMPLATES = (
    ("forks_url", "/forks"),
    ("keys_url", "/keys{/key_id}"),
    ("collaborators_url", "/collaborators{/collaborator}"),
    ("teams_url", "/teams"),
    ("hooks_url", "/hooks"),
    ("issue_events_url", "/issues/events{/number}"),
    ("events_url", "/events"),
    ("assignees_url", "/assignees{/user}"),
    ("branches_url", "/branches{/branch}"),
    ("tags_url", "/tags"),
    ("blobs_url", "/git/blobs{/sha}"),
    ("git_tags_url", "/git/tags{/sha}"),
    ("git_refs_url", "/git/refs{/sha}"),
    ("trees_url", "/git/trees{/sha}"),
    ("statuses_url", "/statuses/{sha}"),
    ("languages_url", "/languages"),
    ("stargazers_url", "/stargazers"),
    ("contributors_url", "/contributors"),
    ("subscribers_url", "/subscribers"),
    ("subscription_url", "/subscription"),
    ("commits_url", "/commits{/sha}"),
    ("git_commits_url", "/git/commits{/sha}"),
    ("comments_url", "/comments{/number}"),
    ("issue_comment_url", "/issues/comments{/number}"),
    ("contents_url", "/contents/{+path}"),
    ("compare_url", "/compare/{base}...{head}"),
    ("merges_url", "/merges"),
    ("archive_url", "/{archive_format}{/ref}"),
    ("downloads_url", "/downloads"),
    ("issues_url", "/issues{/number}"),
    ("pulls_url", "/pulls{/number}"),
    ("milestones_url", "/milestones{/number}"),
    ("notifications_url", "/notifications{?since,all,participating}"),
    ("labels_url", "/labels{/name}"),
    ("releases_url", "/releases{/id}"),
    ("deployments_url", "/deployments"),
)


@dataclass
class Owner:
    """An invented account that owns repositories."""

    login: str
    id: int
    type: str


@dataclass
class RepoSpec:
    """Everything needed to build one repository entry before ids are assigned."""

    language: str | None
    age_days: int
    push_age_days: int
    stars: int
    owner: Owner
    name: str
    fork: bool = False
    archived: bool = False
    description: str | None = ""
    homepage: str | None = None
    license_index: int | None = 0
    topics: list[str] = field(default_factory=list)
    readme: tuple[str, bytes] | None = None
    root_files: list[str] = field(default_factory=list)
    nested_files: list[str] = field(default_factory=list)
    role: str = ""
    created_seconds: int = 0
    repo_id: int = 0


class SnapshotBuilder:
    """Build the synthetic snapshot from one seeded random generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.used_stars: set[int] = set()
        self.used_names: set[str] = set()
        self.used_owner_ids: set[int] = set()
        self.specs: list[RepoSpec] = []
        self.orgs = self._make_owners("Organization", 18)
        self.users = self._make_owners("User", 22)

    def _make_owners(self, owner_type: str, count: int) -> list[Owner]:
        owners: list[Owner] = []
        logins: set[str] = set()
        while len(owners) < count:
            if owner_type == "Organization":
                login = self.rng.choice(ORG_WORDS) + self.rng.choice(ORG_SUFFIXES)
            else:
                login = f"{self.rng.choice(USER_WORDS_A)}-{self.rng.choice(USER_WORDS_B)}"
                if self.rng.random() < 0.4:
                    login += str(self.rng.randint(2, 99))
            if login in logins:
                continue
            logins.add(login)
            owners.append(Owner(login, self._unique_owner_id(), owner_type))
        return owners

    def _unique_owner_id(self) -> int:
        while True:
            owner_id = self.rng.randint(1_200_000, 240_000_000)
            if owner_id not in self.used_owner_ids:
                self.used_owner_ids.add(owner_id)
                return owner_id

    def unique_stars(self, wanted: int) -> int:
        """Return ``wanted`` or the nearest larger free value so no two repos tie."""
        stars = max(wanted, 1)
        while stars in self.used_stars:
            stars += 1
        self.used_stars.add(stars)
        return stars

    def unique_name(self, owner: Owner) -> str:
        """Invent a repository name that no other snapshot repository of any owner uses."""
        while True:
            name = f"{self.rng.choice(NAME_HEADS)}-{self.rng.choice(NAME_TAILS)}"
            if self.rng.random() < 0.2:
                name += f"-{self.rng.choice(('x', 'lite', 'core', 'mini'))}"
            if name not in self.used_names:
                self.used_names.add(name)
                return name

    def pick_owner(self, organization: bool | None = None) -> Owner:
        """Pick an owner, optionally forcing its type."""
        if organization is None:
            organization = self.rng.random() < 0.45
        return self.rng.choice(self.orgs if organization else self.users)

    def random_age(self, low: int, high: int) -> int:
        """Pick an age in days that avoids the ages reserved for named repositories."""
        while True:
            age = self.rng.randint(low, high)
            if age not in SPECIAL_AGES:
                return age

    def description_for(self, language: str | None) -> str:
        """Invent a one-line description."""
        thing = self.rng.choice(THINGS[language or "None"])
        return f"{self.rng.choice(QUALITIES)} {thing} for {self.rng.choice(AUDIENCES)}"

    def homepage_for(self, name: str) -> str | None:
        """Pick a homepage the way real repositories vary: null, empty or a URL."""
        roll = self.rng.random()
        if roll < 0.45:
            return None
        if roll < 0.65:
            return ""
        return f"https://{name}.example.org"

    def new_spec(
        self, language: str | None, age: int, push_age: int, stars: int, **extra: Any
    ) -> RepoSpec:
        """Create a repository spec with invented defaults that ``extra`` may override."""
        owner = extra.pop("owner", None) or self.pick_owner(extra.pop("organization", None))
        spec = RepoSpec(
            language=language,
            age_days=age,
            push_age_days=min(push_age, age),
            stars=self.unique_stars(stars),
            owner=owner,
            name=self.unique_name(owner),
        )
        spec.description = self.description_for(language)
        spec.homepage = self.homepage_for(spec.name)
        spec.license_index = None if self.rng.random() < 0.15 else self.rng.randrange(len(LICENSES))
        spec.topics = sorted(self.rng.sample(TOPIC_POOL, self.rng.randint(0, 5)))
        spec.created_seconds = self.rng.randint(0, 86_399)
        for key, value in extra.items():
            setattr(spec, key, value)
        if "readme" not in extra:
            spec.readme = ("README.md", markdown_readme(self.rng, spec))
        elif spec.readme is not None:
            path, content = spec.readme
            rule = b"=" * len(spec.name)
            content = content.replace(b"@NAME@", spec.name.encode()).replace(b"@RULE@", rule)
            spec.readme = (path, content)
        self.specs.append(spec)
        return spec

    def star_ladder(self, top: int, bottom: int, count: int) -> list[int]:
        """Return ``count`` descending star counts spread geometrically from top to bottom."""
        values = []
        for index in range(count):
            base = top * (bottom / top) ** (index / (count - 1))
            values.append(int(base * self.rng.uniform(0.97, 1.03)))
        return sorted(values, reverse=True)

    def add_language_repos(
        self, language: str, top: int, specials: dict[int, dict[str, Any]]
    ) -> int:
        """Add the in-window repositories of one language and return the 25th star count."""
        ladder = self.star_ladder(top, self.rng.randint(18, 40), IN_WINDOW_PER_LANGUAGE)
        for rank, wanted in enumerate(ladder):
            extra = dict(specials.get(rank, {}))
            age = extra.pop("age", None) or self.random_age(1, CREATED_WINDOW_DAYS - 1)
            push_age = extra.pop("push_age", None)
            if push_age is None:
                push_age = self.rng.randint(0, min(age, MAX_IN_WINDOW_PUSH_AGE))
            self.new_spec(language, age, push_age, wanted, **extra)
        return ladder[24]

    def add_excluded_repos(self, language: str, top: int) -> None:
        """Add repositories the search qualifiers must filter out, some with very high stars."""
        old_age = self.random_age(200, 420)
        self.new_spec(
            language, old_age, self.rng.randint(0, 20), int(top * 2.4), role="old, high stars"
        )
        self.new_spec(
            language,
            self.random_age(230, 900),
            self.rng.randint(0, 25),
            self.rng.randint(60, 400),
            role="old",
        )
        self.new_spec(
            language,
            self.random_age(90, 170),
            self.rng.randint(45, 80),
            int(top * 1.9),
            role="stale push, high stars",
        )
        self.new_spec(
            language,
            self.random_age(60, 170),
            self.rng.randint(46, 59),
            self.rng.randint(40, 300),
            role="stale push",
        )
        self.new_spec(
            language,
            self.random_age(20, 150),
            self.rng.randint(0, 19),
            int(top * 1.5),
            fork=True,
            role="fork in window, high stars",
        )
        self.new_spec(
            language,
            self.random_age(20, 150),
            self.rng.randint(0, 19),
            self.rng.randint(30, 200),
            fork=True,
            role="fork in window",
        )

    def add_render_repos(self, star_ceiling: int) -> None:
        """Add repositories whose blueprint lives at the root (or, twice, deeper down)."""
        languages: list[str | None] = ["Python", "TypeScript", "Go", "JavaScript", "HTML", None]
        young_ages = [self.random_age(3, RENDER_WINDOW_DAYS - 5) for _ in range(27)]
        old_ages = [self.random_age(600, 1500) for _ in range(4)]
        for index, age in enumerate(young_ages + old_ages):
            language = languages[index % len(languages)]
            root_files = ["render.yaml"]
            if index in (4, 11):
                root_files = ["Dockerfile", "render.yaml"]
            push_age = self.rng.randint(0, min(age, 200))
            role = "render blueprint" if age < RENDER_WINDOW_DAYS else "render blueprint, too old"
            spec = self.new_spec(
                language,
                age,
                push_age,
                self.rng.randint(8, star_ceiling - 1),
                root_files=root_files,
                role=role,
                readme=None,
            )
            spec.readme = ("README.md", render_readme(self.rng, spec, "render.yaml"))
        fork = self.new_spec(
            "TypeScript",
            self.random_age(30, 300),
            5,
            self.rng.randint(8, star_ceiling - 1),
            root_files=["render.yaml"],
            fork=True,
            role="render blueprint in a fork",
            readme=None,
        )
        fork.readme = ("README.md", render_readme(self.rng, fork, "render.yaml"))
        for nested in ("deploy/render.yaml", "infra/render/render.yaml"):
            spec = self.new_spec(
                "Python",
                self.random_age(40, 400),
                3,
                self.rng.randint(8, star_ceiling - 1),
                nested_files=[nested],
                role=f"blueprint not at the root ({nested})",
                readme=None,
            )
            spec.readme = ("README.md", render_readme(self.rng, spec, nested))
        for _ in range(2):
            self.new_spec(
                "Go",
                self.random_age(20, 160),
                4,
                self.rng.randint(8, star_ceiling - 1),
                root_files=["docker-compose.yaml"],
                role="other YAML at the root",
            )

    def assign_ids(self) -> None:
        """Give repositories increasing ids in order of creation, as GitHub does."""
        order = sorted(self.specs, key=lambda s: (-s.age_days, -s.created_seconds, s.name))
        next_id = 702_000_000
        for spec in order:
            next_id += self.rng.randint(40_000, 2_400_000)
            spec.repo_id = next_id


def timestamp(moment: datetime.datetime) -> str:
    """Format a UTC datetime the way the GitHub API does."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def day_start(days_after_anchor: int) -> datetime.datetime:
    """Return midnight UTC of the day ``days_after_anchor`` days after the anchor."""
    day = ANCHOR_DATE + datetime.timedelta(days=days_after_anchor)
    return datetime.datetime(day.year, day.month, day.day)


def node_id(prefix: str, number: int) -> str:
    """Invent a GraphQL node id in GitHub's current style."""
    raw = number.to_bytes(5, "big")
    return prefix + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def markdown_readme(rng: random.Random, spec: RepoSpec) -> bytes:
    """Invent a short Markdown README for a repository."""
    install = {
        "Python": f"pip install {spec.name}",
        "TypeScript": f"npm install {spec.name}",
        "Go": f"go install example.org/{spec.owner.login}/{spec.name}@latest",
    }.get(spec.language or "", f"git clone https://github.com/{spec.owner.login}/{spec.name}")
    paragraphs = [
        f"# {spec.name}",
        spec.description or "An experiment.",
        "## Install",
        f"```\n{install}\n```",
        "## Usage",
    ]
    for _ in range(rng.randint(1, 6)):
        paragraphs.append(
            f"{rng.choice(QUALITIES)} defaults keep {rng.choice(AUDIENCES)} productive; "
            f"see the {rng.choice(TOPIC_POOL)} guide for details."
        )
    return ("\n\n".join(paragraphs) + "\n").encode("utf-8")


def render_readme(rng: random.Random, spec: RepoSpec, blueprint_path: str) -> bytes:
    """Invent a README that explains where the deployment blueprint lives."""
    body = markdown_readme(rng, spec).decode("utf-8")
    return (
        body + f"\n## Deploy\n\nThe Render blueprint is `{blueprint_path}`; "
        "create a new Blueprint instance from this repository to deploy it.\n"
    ).encode("utf-8")


def edge_readmes(rng: random.Random) -> dict[str, tuple[str, bytes]]:
    """Return the README variants that exercise decoding and size edge cases."""
    rst = (
        "@NAME@\n@RULE@\n\nA reStructuredText README.\n\n"
        "Installation\n------------\n\n.. code-block:: console\n\n   pip install @NAME@\n"
    )
    non_ascii = (
        "# @NAME@: Café 漢字 toolkit 🚀\n\n"
        "Résumé-grade parsing for naïve inputs: 日本語, 한국어, Ελληνικά.\n\n"
        "Emoji in headings: ✨ fast, 🧪 tested, 📦 packaged.\n"
    )
    latin1 = (
        "# @NAME@: caf\u00e9 in latin-1\n\nEncoded as ISO-8859-1: d\u00e9j\u00e0 vu, na\u00efve.\n"
    )
    sections = []
    index = 0
    while sum(len(s) for s in sections) < LARGE_README_BYTES:
        index += 1
        words = " ".join(rng.choice(NAME_HEADS + NAME_TAILS) for _ in range(60))
        sections.append(
            f"## Section {index}\n\n{words}\n\n| key | value |\n|---|---|\n| n | {index} |\n\n"
        )
    return {
        "rst": ("README.rst", rst.encode("utf-8")),
        "non_ascii": ("README.md", non_ascii.encode("utf-8")),
        "bom": (
            "README.md",
            b"\xef\xbb\xbf# @NAME@\n\nThe first bytes are a UTF-8 BOM.\n",
        ),
        "latin1": ("README.md", latin1.encode("latin-1")),
        "nul": ("README.md", b"# @NAME@\n\nBefore\x00after\x00\x00 the NUL characters.\n"),
        "large": (
            "README.md",
            ("# @NAME@\n\nA very long README.\n\n" + "".join(sections)).encode("utf-8"),
        ),
    }


def build_repo_object(spec: RepoSpec, rng: random.Random) -> dict[str, Any]:
    """Build the full GitHub repository object for a spec as of day 0."""
    full_name = f"{spec.owner.login}/{spec.name}"
    api_url = f"{API_ROOT}/repos/{full_name}"
    created = day_start(-spec.age_days) + datetime.timedelta(seconds=spec.created_seconds)
    latest = day_start(0) + datetime.timedelta(hours=DAY_CHANGE_LATEST_HOUR, minutes=59)
    pushed = day_start(-spec.push_age_days) + datetime.timedelta(seconds=rng.randint(0, 43_199))
    pushed = min(max(pushed, created + datetime.timedelta(minutes=rng.randint(1, 90))), latest)
    updated = max(
        pushed, day_start(-rng.randint(0, 2)) + datetime.timedelta(seconds=rng.randint(0, 43_199))
    )
    updated = min(updated, latest)
    owner_prefix = "O_kgDO" if spec.owner.type == "Organization" else "U_kgDO"
    owner_api = f"{API_ROOT}/users/{spec.owner.login}"
    owner: dict[str, Any] = {
        "login": spec.owner.login,
        "id": spec.owner.id,
        "node_id": node_id(owner_prefix, spec.owner.id),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{spec.owner.id}?v=4",
        "gravatar_id": "",
        "url": owner_api,
        "html_url": f"{WEB_ROOT}/{spec.owner.login}",
    }
    owner.update({key: owner_api + suffix for key, suffix in OWNER_URL_TEMPLATES})
    owner.update({"type": spec.owner.type, "user_view_type": "public", "site_admin": False})
    forks = int(spec.stars * rng.uniform(0.02, 0.15))
    open_issues = rng.randint(0, max(1, spec.stars // 40))
    license_obj = None
    if spec.license_index is not None:
        key, name, spdx, license_node = LICENSES[spec.license_index]
        license_obj = {
            "key": key,
            "name": name,
            "spdx_id": spdx,
            "url": f"{API_ROOT}/licenses/{key}",
            "node_id": license_node,
        }
    repo: dict[str, Any] = {
        "id": spec.repo_id,
        "node_id": node_id("R_kgDO", spec.repo_id),
        "name": spec.name,
        "full_name": full_name,
        "private": False,
        "owner": owner,
        "html_url": f"{WEB_ROOT}/{full_name}",
        "description": spec.description,
        "fork": spec.fork,
        "url": api_url,
    }
    repo.update({key: api_url + suffix for key, suffix in REPO_URL_TEMPLATES})
    repo.update(
        {
            "created_at": timestamp(created),
            "updated_at": timestamp(updated),
            "pushed_at": timestamp(pushed),
            "git_url": f"git://github.com/{full_name}.git",
            "ssh_url": f"git@github.com:{full_name}.git",
            "clone_url": f"{WEB_ROOT}/{full_name}.git",
            "svn_url": f"{WEB_ROOT}/{full_name}",
            "homepage": spec.homepage,
            "size": rng.randint(12, 48_000),
            "stargazers_count": spec.stars,
            "watchers_count": spec.stars,
            "language": spec.language,
            "has_issues": True,
            "has_projects": rng.random() < 0.7,
            "has_downloads": True,
            "has_wiki": rng.random() < 0.5,
            "has_pages": rng.random() < 0.2,
            "has_discussions": rng.random() < 0.3,
            "forks_count": forks,
            "mirror_url": None,
            "archived": spec.archived,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": license_obj,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": spec.topics,
            "visibility": "public",
            "forks": forks,
            "open_issues": open_issues,
            "watchers": spec.stars,
            "default_branch": "main" if rng.random() < 0.85 else "master",
        }
    )
    return repo


def encode_readme(readme: tuple[str, bytes] | None) -> dict[str, str] | None:
    """Encode a README for the snapshot file."""
    if readme is None:
        return None
    path, content = readme
    return {"path": path, "content_b64": base64.b64encode(content).decode("ascii")}


def day_moment(rng: random.Random, day: int) -> str:
    """Return a timestamp on snapshot day ``day`` before the scheduled run."""
    seconds = rng.randint(0, DAY_CHANGE_LATEST_HOUR * 3600 + 3599)
    return timestamp(day_start(day) + datetime.timedelta(seconds=seconds))


def star_growth(
    rng: random.Random, stars: dict[int, int], day: int, share: float, skip: set[int]
) -> dict[int, dict[str, Any]]:
    """Grow stars for most repositories, keeping every star count in the snapshot distinct."""
    changes: dict[int, dict[str, Any]] = {}
    taken = set(stars.values())
    for repo_id in sorted(stars):
        if repo_id in skip or rng.random() >= share:
            continue
        old = stars[repo_id]
        new = old + max(1, int(old * rng.uniform(0.004, 0.05))) + rng.randint(0, 6)
        while new in taken:
            new += 1
        taken.discard(old)
        taken.add(new)
        stars[repo_id] = new
        change: dict[str, Any] = {"stargazers_count": new, "updated_at": day_moment(rng, day)}
        if rng.random() < 0.3:
            change["pushed_at"] = change["updated_at"]
        changes[repo_id] = change
    return changes


def build_snapshot(seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Build the whole synthetic snapshot as a JSON-ready dictionary."""
    builder = SnapshotBuilder(seed)
    rng = builder.rng
    readmes = edge_readmes(rng)
    org = builder.orgs[0]
    python = {
        0: {"owner": org, "age": 37, "role": "top Python repo, Organization owner"},
        1: {"age": 22, "role": "description changes on day 1"},
        2: {"age": 14, "role": "14 days old"},
        3: {"description": None, "role": "description null"},
        4: {"age": 61, "role": "README changes on day 2"},
        5: {"license_index": None, "role": "license null"},
        6: {
            "root_files": ["render.yaml"],
            "age": 48,
            "role": "Python top 25 with root render.yaml",
        },
        8: {"readme": readmes["rst"], "role": "README.rst"},
        9: {"age": 10, "role": "10 days old"},
        11: {"readme": readmes["bom"], "role": "README with a UTF-8 BOM"},
        13: {"readme": readmes["nul"], "role": "README with NUL characters"},
        15: {"archived": True, "role": "archived"},
        17: {"readme": None, "role": "no README"},
        19: {"homepage": None, "owner": builder.users[0], "role": "homepage null, User owner"},
        20: {"age": 1, "push_age": 0, "role": "one day old"},
        22: {"age": CREATED_WINDOW_DAYS - 1, "push_age": 3, "role": "179 days old"},
    }
    typescript = {
        1: {"age": 15, "role": "15 days old"},
        2: {"homepage": "", "role": "homepage empty string"},
        4: {"age": 74, "topics": [], "role": "74 days old, topics empty"},
        6: {"readme": readmes["non_ascii"], "role": "README with non-ASCII text"},
        9: {"readme": readmes["large"], "role": "large README"},
        12: {"readme": readmes["latin1"], "role": "README in latin-1 bytes"},
        14: {"role": "renamed on day 1"},
    }
    go = {
        3: {"age": 10, "role": "10 days old"},
        5: {"role": "absent on day 1"},
        7: {"age": 14, "role": "14 days old"},
        8: {"readme": None, "role": "no README"},
        10: {"description": None, "role": "description null"},
        12: {"age": 74, "role": "74 days old"},
    }
    tops = {"Python": 4_800, "TypeScript": 4_200, "Go": 3_600}
    thresholds = []
    for language, specials in zip(SEARCH_LANGUAGES, (python, typescript, go), strict=True):
        thresholds.append(builder.add_language_repos(language, tops[language], specials))
    for language in SEARCH_LANGUAGES:
        builder.add_excluded_repos(language, tops[language])
    builder.add_render_repos(min(thresholds))
    builder.assign_ids()

    entries = []
    for spec in sorted(builder.specs, key=lambda s: s.repo_id):
        entry: dict[str, Any] = {
            "repo": build_repo_object(spec, rng),
            "readme": encode_readme(spec.readme),
            "root_files": spec.root_files,
        }
        if spec.nested_files:
            entry["nested_files"] = spec.nested_files
        entries.append(entry)
    by_role = {spec.role: spec for spec in builder.specs if spec.role}
    days = build_days(rng, builder, by_role)
    return {
        "format": SNAPSHOT_FORMAT,
        "synthetic": True,
        "anchor_date": ANCHOR_DATE.isoformat(),
        "repositories": entries,
        "days": days,
    }


def build_days(
    rng: random.Random, builder: SnapshotBuilder, by_role: dict[str, RepoSpec]
) -> dict[str, dict[str, Any]]:
    """Build the day-1 and day-2 changes."""
    stars = {spec.repo_id: spec.stars for spec in builder.specs}
    absent = by_role["absent on day 1"]
    renamed = by_role["renamed on day 1"]
    described = by_role["description changes on day 1"]
    rewritten = by_role["README changes on day 2"]

    day1 = star_growth(rng, stars, 1, 0.85, skip={absent.repo_id})
    new_name = renamed.name + "-next"
    day1.setdefault(renamed.repo_id, {}).update(
        {"name": new_name, "full_name": f"{renamed.owner.login}/{new_name}"}
    )
    day1.setdefault(described.repo_id, {})["description"] = (
        f"{described.description} (now with incremental sync)"
    )

    day2 = star_growth(rng, stars, 2, 0.8, skip=set())
    old_readme = rewritten.readme[1] if rewritten.readme else b""
    new_readme = old_readme + b"\n## Changelog\n\n- 2.0: rewritten storage engine.\n"
    day2.setdefault(rewritten.repo_id, {})["readme"] = encode_readme(("README.md", new_readme))

    def as_list(changes: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": repo_id, "set": changes[repo_id]} for repo_id in sorted(changes)]

    return {
        "1": {"changes": as_list(day1), "absent": [absent.repo_id]},
        "2": {"changes": as_list(day2), "absent": []},
    }


def render_json(snapshot: dict[str, Any]) -> str:
    """Serialise the snapshot in its committed, diff-friendly form."""
    return json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the snapshot file."""
    parser = argparse.ArgumentParser(description="Generate the synthetic replay snapshot.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args(argv)
    text = render_json(build_snapshot(args.seed))
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode('utf-8'))} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
