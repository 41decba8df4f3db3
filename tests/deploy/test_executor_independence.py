"""
Tasks run the same under any executor: no local files, no shared process state, small XComs,
and a retried task changes nothing it already wrote.

LocalExecutor runs tasks in the scheduler's container, Celery and Kubernetes on other machines,
and a retry may land anywhere. So task code must keep its state in PostgreSQL and XCom only.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from tests.conftest import dag_environment
from tests.dags.dagrun import run_dag
from tests.deploy import code_facts

PROJECT_ROOT = code_facts.PROJECT_ROOT
LOGICAL_DATE = dt.datetime(2026, 12, 3, 14, tzinfo=dt.UTC)  # the replay fixture's AS_OF date
SNAPSHOT_FILE = PROJECT_ROOT / "include" / "replay" / "snapshot.json"
MAX_XCOM_BYTES = 16 * 1024  # XComs carry ids and counts; data travels through PostgreSQL
README_PROBE_CHARS = 120  # a slice this long cannot appear in an XCom by chance
MIN_PROBED_README_CHARS = 3 * README_PROBE_CHARS
# Every task that returns a value; the others (SQL operators) push none.
XCOM_TASKS = frozenset(
    {
        "ensure_schema",
        "resolve_run",
        "list_languages",
        "fetch_language_repos",
        "fetch_render_repos",
        "plan_batches",
        "analyze_repo_batch",
        "aggregate_results.check_warehouse",
        "cleanup_old_data",
        "record_run",
    }
)
WRITE_MODE_CHARACTERS = frozenset("wax+")
MODE = re.compile(r"^[rwxabt+]+$")
FILE_WRITING_METHODS = frozenset(
    {"write_text", "write_bytes", "mkdir", "touch", "unlink", "rmdir", "rename", "symlink_to"}
)
FILE_WRITING_FUNCTIONS = frozenset(
    {
        ("os", "remove"),
        ("os", "makedirs"),
        ("os", "mkdir"),
        ("os", "rename"),
        ("shutil", "copy"),
        ("shutil", "copyfile"),
        ("shutil", "copytree"),
        ("shutil", "move"),
        ("shutil", "rmtree"),
    }
)
LOCAL_STORAGE_MODULES = frozenset({"tempfile", "shelve", "dbm", "sqlite3"})
MUTABLE_FACTORIES = frozenset(
    {"list", "dict", "set", "defaultdict", "deque", "Counter", "OrderedDict", "bytearray"}
)
MUTATING_METHODS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "remove",
        "pop",
        "popitem",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "appendleft",
        "extendleft",
    }
)


def _mode(node: ast.Call) -> str | None:
    """Return the literal mode of an ``open`` call: open(file, mode), Path.open(mode), gzip.open."""
    candidates = [keyword.value for keyword in node.keywords if keyword.arg == "mode"]
    if isinstance(node.func, ast.Attribute):
        candidates.extend(node.args[:2])
    else:
        candidates.extend(node.args[1:2])
    for candidate in candidates:
        if (
            isinstance(candidate, ast.Constant)
            and isinstance(candidate.value, str)
            and MODE.match(candidate.value)
        ):
            return candidate.value
    return None


def _module_mutables(tree: ast.Module) -> set[str]:
    """Return module-level names bound to a mutable container."""
    names = set()
    for node in tree.body:
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        mutable = isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp)
        if isinstance(value, ast.Call):
            func = value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            mutable = name in MUTABLE_FACTORIES
        if mutable:
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def violations(tree: ast.Module) -> list[str]:
    """Return what in a module writes local files or changes module-level state from a function."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Global):
            found.add((line, f"global {', '.join(node.names)}"))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                if module.split(".")[0] in LOCAL_STORAGE_MODULES:
                    found.add((line, f"import {module}"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = _root_name(func.value) if isinstance(func, ast.Attribute) else None
            mode = _mode(node) if name == "open" else None
            if mode and WRITE_MODE_CHARACTERS & set(mode):
                found.add((line, f"open(..., {mode!r})"))
            elif isinstance(func, ast.Attribute) and name in FILE_WRITING_METHODS:
                found.add((line, f".{name}()"))
            elif (owner, name) in FILE_WRITING_FUNCTIONS:
                found.add((line, f"{owner}.{name}()"))

    shared = _module_mutables(tree)
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        for node in ast.walk(function):
            targets = []
            if isinstance(node, ast.Assign | ast.Delete):
                targets = node.targets
            elif isinstance(node, ast.AugAssign):
                targets = [node.target]
            for target in targets:
                root = _root_name(target)
                if isinstance(target, ast.Subscript | ast.Attribute) and root in shared:
                    found.add((node.lineno, f"module-level {root}[...] changed"))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATING_METHODS
                and _root_name(node.func.value) in shared
            ):
                root = _root_name(node.func.value)
                found.add((node.lineno, f"module-level {root}.{node.func.attr}()"))
    return [f"{line}: {message}" for line, message in sorted(found)]


def test_checker_task_code_list_is_current() -> None:
    files = {path.relative_to(PROJECT_ROOT).as_posix() for path in code_facts.task_code_files()}
    assert {"dags/trender_daily.py", "plugins/trender/pipeline.py"} <= files
    assert code_facts.NOT_TASK_CODE.isdisjoint(files)
    for excluded in code_facts.NOT_TASK_CODE:
        assert (PROJECT_ROOT / excluded).is_file(), f"{excluded} is gone: update NOT_TASK_CODE"


def test_command_line_modules_are_recognised() -> None:
    assert code_facts.is_command_line_module(ast.parse("if __name__ == '__main__':\n    main()"))
    assert not code_facts.is_command_line_module(ast.parse("if DEBUG:\n    main()"))
    replay = PROJECT_ROOT / "plugins" / "trender" / "github" / "replay.py"
    assert code_facts.is_command_line_module(code_facts.parse(replay))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("open('x', 'w')", "1: open(..., 'w')"),
        ("open('x', mode='a')", "1: open(..., 'a')"),
        ("p.open('rb+')", "1: open(..., 'rb+')"),
        ("Path('x').write_text('y')", "1: .write_text()"),
        ("import tempfile", "1: import tempfile"),
        ("from tempfile import mkdtemp", "1: import tempfile"),
        ("shutil.rmtree('x')", "1: shutil.rmtree()"),
        ("def f():\n    global SEEN", "2: global SEEN"),
        ("SEEN = set()\ndef f(x):\n    SEEN.add(x)", "3: module-level SEEN.add()"),
        ("CACHE = {}\ndef f(x):\n    CACHE[x] = 1", "3: module-level CACHE[...] changed"),
        ("ROWS: list = []\ndef f():\n    ROWS.append(1)", "3: module-level ROWS.append()"),
    ],
)
def test_checker_finds_each_kind_of_violation(source: str, expected: str) -> None:
    assert violations(ast.parse(source)) == [expected]


def test_checker_accepts_reads_and_local_state() -> None:
    source = (
        "LIMITS = {'a': 1}\n"
        "def f(path):\n"
        "    rows = []\n"
        "    rows.append(LIMITS['a'])\n"
        "    cache = {}\n"
        "    cache['k'] = open(path).read() + path.open('r').read()\n"
        "    return rows, cache\n"
    )
    assert violations(ast.parse(source)) == []


@pytest.mark.parametrize(
    "path",
    code_facts.task_code_files(),
    ids=lambda path: path.relative_to(PROJECT_ROOT).as_posix(),
)
def test_task_code_writes_no_local_files_and_shares_no_state(path: Path) -> None:
    assert violations(code_facts.parse(path)) == []


@pytest.fixture(scope="module")
def full_run(
    airflow_db: None, pg_server_url: str, schema_template: str
) -> Iterator[tuple[Any, dict[tuple[str, int, str], str], str]]:
    """
    Run the whole DAG once for the module's tests, keeping its warehouse and replay server up.

    Yield the DagRun, its raw XCom values by (task id, map index, key), and the warehouse URL.
    """
    from airflow.utils.session import create_session
    from sqlalchemy import text

    with dag_environment(pg_server_url, schema_template) as (url, _server):
        dag_run = run_dag(LOGICAL_DATE)
        with create_session() as session:
            rows = session.execute(
                text(
                    "select task_id, map_index, key, value from xcom "
                    "where dag_id = :dag_id and run_id = :run_id"
                ),
                {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id},
            ).all()
        xcoms = {
            (task_id, map_index, key): value if isinstance(value, str) else json.dumps(value)
            for task_id, map_index, key, value in rows
        }
        yield dag_run, xcoms, url


@pytest.fixture
def run_db(full_run: tuple[Any, dict, str]) -> Iterator[psycopg.Connection]:
    """Return a connection to the shared run's warehouse."""
    with psycopg.connect(full_run[2]) as conn:
        yield conn


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _largest_snapshot_readme() -> tuple[str, str]:
    snapshot = json.loads(SNAPSHOT_FILE.read_text(encoding="utf-8"))
    name, content = max(
        (
            (entry["repo"]["full_name"], base64.b64decode(entry["readme"]["content_b64"]))
            for entry in snapshot["repositories"]
            if entry.get("readme")
        ),
        key=lambda item: len(item[1]),
    )
    return name, content.decode("utf-8", errors="replace")


def test_xcoms_stay_small_and_carry_no_readme(
    full_run: tuple[Any, dict[tuple[str, int, str], str], str], run_db: psycopg.Connection
) -> None:
    dag_run, xcoms, _ = full_run
    assert dag_run.state == "success"
    assert {task_id for task_id, _, _ in xcoms} == XCOM_TASKS
    sizes = {key: len(value.encode("utf-8")) for key, value in xcoms.items()}
    assert {key: size for key, size in sizes.items() if size >= MAX_XCOM_BYTES} == {}

    largest_name, largest_text = _largest_snapshot_readme()
    stored = dict(
        run_db.execute(
            "select full_name, readme_text from raw_github_repos "
            "where run_id = %s and readme_text is not null",
            (dag_run.run_id,),
        ).fetchall()
    )
    assert largest_name in stored, "the run must fetch the largest README for this to test"
    probes = {f"{largest_name} (start)": largest_text[:README_PROBE_CHARS]}
    for name, readme in stored.items():
        if len(readme) >= MIN_PROBED_README_CHARS:
            middle = len(readme) // 2
            probes[name] = readme[middle : middle + README_PROBE_CHARS]
    assert len(probes) > len(XCOM_TASKS)

    texts = list(xcoms.values())
    for raw in xcoms.values():
        texts.extend(_strings(json.loads(raw)))
    leaked = sorted(name for name, probe in probes.items() if any(probe in t for t in texts))
    assert leaked == []


def _table_counts(db: psycopg.Connection) -> dict[str, int]:
    tables = [
        name
        for (name,) in db.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name"
        ).fetchall()
    ]
    counts = {
        table: db.execute(f'select count(*) from "{table}"').fetchone()[0] for table in tables
    }
    db.commit()
    return counts


def _facts(db: psycopg.Connection) -> list[tuple]:
    rows = db.execute(
        "select snapshot_date, repo_id, category, stars, momentum_score, rank_in_language, "
        "rank_overall from fact_repo_snapshots order by snapshot_date, repo_id"
    ).fetchall()
    db.commit()
    return rows


def _retry_context(run_id: str, task_id: str, map_index: int = -1, label: str = "") -> dict:
    """Return the parts of a task context the library reads, as the same try would see them."""
    ti = SimpleNamespace(
        task_id=task_id,
        map_index=map_index,
        try_number=1,
        start_date=dt.datetime.now(dt.UTC),
        rendered_map_index=label or None,
    )
    return {"ti": ti, "run_id": run_id}


def test_rerunning_every_task_with_the_same_inputs_changes_no_row(
    full_run: tuple[Any, dict[tuple[str, int, str], str], str], run_db: psycopg.Connection
) -> None:
    from trender import pipeline, warehouse
    from trender.settings import RunSettings

    dag_run, xcoms, _ = full_run
    db = run_db
    assert dag_run.state == "success"
    run_xcom = json.loads(xcoms[("resolve_run", -1, "return_value")])
    planned = json.loads(xcoms[("plan_batches", -1, "return_value")])
    run = RunSettings.from_xcom(run_xcom)
    before_counts, before_facts = _table_counts(db), _facts(db)
    assert before_counts["fact_repo_snapshots"] > 0

    assert pipeline.ensure_schema() == []
    for index, language in enumerate(run_xcom["languages"]):
        context = _retry_context(run.run_id, "fetch_language_repos", index, language)
        pipeline.fetch_language_repos(run_xcom, language, context)
    pipeline.fetch_render_repos(run_xcom, _retry_context(run.run_id, "fetch_render_repos"))
    assert pipeline.plan_batches(run_xcom) == planned
    for index, batch in enumerate(planned):
        context = _retry_context(run.run_id, "analyze_repo_batch", index, batch["label"])
        pipeline.analyze_repo_batch(run_xcom, batch, context)
    conn = warehouse.connect()
    try:
        for name in (
            "load/candidates.sql",
            "load/dim_repositories.sql",
            "load/fact_repo_snapshots.sql",
        ):
            warehouse.run_sql_file(conn, name, pipeline.sql_params(run))
    finally:
        conn.close()
    checks = pipeline.check_warehouse(
        run_xcom, _retry_context(run.run_id, "aggregate_results.check_warehouse")
    )
    assert checks["checks_failed"] == 0
    cleanup = pipeline.cleanup_old_data(run_xcom, _retry_context(run.run_id, "cleanup_old_data"))
    assert "error" not in cleanup

    assert _table_counts(db) == before_counts
    assert _facts(db) == before_facts
