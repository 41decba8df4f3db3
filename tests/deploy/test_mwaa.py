"""The MWAA bundle holds what an environment needs, and the DAG runs from it in a bare home."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from tests.conftest import AS_OF, PROJECT_ROOT
from tests.deploy.airflow_home import bare_env
from trender import warehouse

BUNDLE_SCRIPT = PROJECT_ROOT / "scripts" / "mwaa_bundle.py"
BARE_HOME_SCRIPT = Path(__file__).resolve().parent / "bare_home.py"
SQL_ROOT = PROJECT_ROOT / "include" / "sql"
PACKAGE_ROOT = PROJECT_ROOT / "plugins" / "trender"
LOGICAL_DATE = f"{AS_OF.isoformat()}T14:00:00+00:00"
DEV_REPO_COUNT = 5  # dev mode: Python only, DEV_REPO_LIMIT (default 5) repositories
# Only these reach the subprocess from the test's environment: no PYTHONPATH, no AIRFLOW_*.
SUBPROCESS_TIMEOUT_SECONDS = 600


def _relative_files(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _load_bundle_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mwaa_bundle_under_test", BUNDLE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the bundle with the script's command line, as `make mwaa-bundle` does."""
    out = tmp_path_factory.mktemp("mwaa") / "dist"
    completed = subprocess.run(
        [sys.executable, str(BUNDLE_SCRIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    return out


def test_dags_folder_holds_the_dag_and_every_sql_file(bundle: Path) -> None:
    dags = bundle / "dags"
    expected = {"trender_daily.py"} | {f"trender_sql/{name}" for name in _relative_files(SQL_ROOT)}
    assert _relative_files(dags) == expected
    assert (dags / "trender_daily.py").read_bytes() == (
        PROJECT_ROOT / "dags" / "trender_daily.py"
    ).read_bytes()
    for name in _relative_files(SQL_ROOT):
        assert (dags / "trender_sql" / name).read_bytes() == (SQL_ROOT / name).read_bytes()


def test_plugins_zip_holds_the_package_and_airflowignore_at_its_root(bundle: Path) -> None:
    with zipfile.ZipFile(bundle / "plugins.zip") as archive:
        names = archive.namelist()
        ignore = archive.read(".airflowignore")
    package = sorted(f"trender/{name}" for name in _relative_files(PACKAGE_ROOT))
    expected = [".airflowignore", *package]
    assert names == expected
    assert ignore == (PROJECT_ROOT / "plugins" / ".airflowignore").read_bytes()


def test_plugins_zip_skips_bytecode_and_caches(tmp_path: Path) -> None:
    root = tmp_path / "project"
    for folder in ("dags", "plugins", "include/sql"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder)
    for name in ("requirements.txt", "requirements-dev.in"):
        shutil.copy2(PROJECT_ROOT / name, root / name)
    cache = root / "plugins" / "trender" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "stray.cpython-311.pyc").write_bytes(b"bytecode")
    (root / "plugins" / "trender" / "stray.pyc").write_bytes(b"bytecode")

    out = _load_bundle_module().build(tmp_path / "out", root=root)

    with zipfile.ZipFile(out / "plugins.zip") as archive:
        names = archive.namelist()
    assert [name for name in names if "__pycache__" in name or name.endswith(".pyc")] == []
    assert "trender/warehouse.py" in names


def test_rebuilding_replaces_the_old_bundle_and_gives_the_same_zip(tmp_path: Path) -> None:
    module = _load_bundle_module()
    out = module.build(tmp_path / "out")
    first = (out / "plugins.zip").read_bytes()
    stale = out / "dags" / "removed_dag.py"
    stale.write_text("# a DAG deleted from the project since the last bundle\n")

    module.build(out)

    assert not stale.exists()
    assert (out / "plugins.zip").read_bytes() == first


def test_requirements_keep_every_pin_and_explain_the_constraints_line(bundle: Path) -> None:
    import airflow

    text = (bundle / "requirements.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    source = (PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert pins == [line for line in source if line and not line.startswith("#")]
    constraint = (
        '# --constraint "https://raw.githubusercontent.com/apache/airflow/'
        f'constraints-{airflow.__version__}/constraints-3.11.txt"'
    )
    assert [line for line in lines if "--constraint" in line] == [constraint]


def test_make_target_builds_into_dist_mwaa() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:"))
    assert "mwaa-bundle" in phony.split()
    recipe = makefile.split("\nmwaa-bundle:\n", 1)[1].splitlines()[0]
    assert recipe == "\t$(PYTHON) scripts/mwaa_bundle.py --out dist/mwaa"
    assert '@echo "make mwaa-bundle ' in makefile


@pytest.fixture
def outside_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Make ``trender.warehouse`` look installed in a bare plugins folder without include/."""
    plugins = tmp_path / "home" / "plugins"
    (plugins / "trender").mkdir(parents=True)
    monkeypatch.setattr(warehouse, "__file__", str(plugins / "trender" / "warehouse.py"))
    monkeypatch.delenv("TRENDER_SQL_DIR", raising=False)
    return tmp_path / "home"


def test_sql_dir_prefers_the_environment_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRENDER_SQL_DIR", str(tmp_path))
    assert warehouse.sql_dir() == tmp_path


def test_sql_dir_uses_include_beside_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRENDER_SQL_DIR", raising=False)
    assert warehouse.sql_dir() == SQL_ROOT


def test_sql_dir_falls_back_to_the_dags_folder_from_the_environment(
    outside_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = outside_project / "dags" / "trender_sql"
    bundled.mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(outside_project / "dags"))
    assert warehouse.sql_dir() == bundled


def test_sql_dir_reads_the_dags_folder_from_airflow_config(
    outside_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.configuration import conf

    bundled = outside_project / "configured-dags" / "trender_sql"
    bundled.mkdir(parents=True)
    reads: list[tuple[str, str]] = []

    def configured(section: str, key: str, **_: object) -> str:
        reads.append((section, key))
        return str(bundled.parent)

    monkeypatch.delenv("AIRFLOW__CORE__DAGS_FOLDER")
    monkeypatch.setattr(conf, "get", configured)
    assert warehouse.sql_dir() == bundled
    assert reads == [("core", "dags_folder")]


def test_sql_dir_names_every_place_searched_when_none_exists(
    outside_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRENDER_SQL_DIR", str(tmp_path / "missing-override"))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(outside_project / "dags"))
    with pytest.raises(FileNotFoundError) as raised:
        warehouse.sql_dir()
    message = str(raised.value)
    places = [
        str(tmp_path / "missing-override"),
        str(outside_project / "include" / "sql"),
        str(outside_project / "dags" / "trender_sql"),
    ]
    assert all(place in message for place in places), message
    assert [message.index(place) for place in places] == sorted(
        message.index(place) for place in places
    )


@pytest.fixture
def bare_home(bundle: Path, tmp_path: Path) -> Path:
    """Lay out an Airflow home as MWAA does: the bundle's dags/ and the unzipped plugins."""
    home = tmp_path / "airflow"
    shutil.copytree(bundle / "dags", home / "dags")
    with zipfile.ZipFile(bundle / "plugins.zip") as archive:
        archive.extractall(home / "plugins")
    return home


def _bare_env(home: Path, warehouse_url: str, github_url: str) -> dict[str, str]:
    env = bare_env(home)
    env.update(
        {
            "PYTHONPATH": str(home / "plugins"),
            "AIRFLOW_CONN_TRENDER_POSTGRES": warehouse_url,
            "AIRFLOW_CONN_TRENDER_GITHUB": json.dumps({"conn_type": "http", "host": github_url}),
        }
    )
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-P", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]


@pytest.fixture
def bare_run(bare_home: Path, empty_db_url: str, replay_server: object) -> tuple[Path, dict]:
    """Migrate the bare home's SQLite metadata, then parse and run the DAG there in dev mode."""
    env = _bare_env(bare_home, empty_db_url, replay_server.url)
    _run(["-m", "airflow", "db", "migrate"], env, bare_home)
    result_file = bare_home / "result.json"
    _run(
        [
            str(BARE_HOME_SCRIPT),
            str(result_file),
            "--run-at",
            LOGICAL_DATE,
            "--conf",
            json.dumps({"dev_mode": True}),
        ],
        env,
        bare_home,
    )
    return bare_home, json.loads(result_file.read_text(encoding="utf-8"))


def test_bare_home_parses_and_runs_the_dag_from_the_bundle(
    bare_run: tuple[Path, dict], empty_db_url: str
) -> None:
    home, result = bare_run

    assert result["import_errors"] == {}
    assert result["dag_ids"] == ["trender_daily"]
    assert result["trender_file"] == str(home / "plugins" / "trender" / "__init__.py")
    assert result["sql_dir"] == str(home / "dags" / "trender_sql")
    venv = PROJECT_ROOT / ".venv"  # the interpreter's own packages may live in the checkout
    from_project = [
        entry
        for entry in result["sys_path"]
        if Path(entry).is_relative_to(PROJECT_ROOT) and not Path(entry).is_relative_to(venv)
    ]
    assert from_project == []
    assert result["state"] == "success"

    with psycopg.connect(empty_db_url) as conn:
        (facts,) = conn.execute(
            "select count(*) from fact_repo_snapshots where snapshot_date = %s", (AS_OF,)
        ).fetchone()
        (status,) = conn.execute(
            "select status from fact_workflow_runs where run_id = %s", (result["run_id"],)
        ).fetchone()
    assert facts == DEV_REPO_COUNT
    assert status == "success"
