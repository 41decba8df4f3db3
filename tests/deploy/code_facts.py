"""What the DAG and its library read from a deployment, found in their source code with ``ast``."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Run by tasks or at parse time on every Airflow component.
TASK_CODE_GLOBS = ("plugins/trender/**/*.py", "dags/*.py")
# The replay server is a local stand-in for GitHub, never imported by a task. Command-line
# modules (an ``if __name__ == "__main__":`` block) are left out too: people run them, not tasks.
NOT_TASK_CODE = frozenset({"plugins/trender/github/replay.py"})
CONN_ID_KEYWORDS = frozenset({"conn_id", "postgres_conn_id", "http_conn_id", "github_conn_id"})
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
TEMPLATE_VARIABLE = re.compile(r"\bvar\.(?:value|json)\.([A-Za-z_][A-Za-z0-9_]*)")


def task_code_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """Return the Python files that run inside Airflow, in a stable order."""
    found = {path for pattern in TASK_CODE_GLOBS for path in root.glob(pattern)}
    return sorted(
        path
        for path in found
        if "__pycache__" not in path.parts
        and path.relative_to(root).as_posix() not in NOT_TASK_CODE
        and not is_command_line_module(parse(path))
    )


def is_command_line_module(tree: ast.Module) -> bool:
    """Tell whether a module has a top-level ``if __name__ == "__main__":`` block."""
    for node in tree.body:
        test = node.test if isinstance(node, ast.If) else None
        if (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
            and [_string(value) for value in test.comparators] == ["__main__"]
        ):
            return True
    return False


def parse(path: Path) -> ast.Module:
    """Parse one source file."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def connection_ids(trees: Iterable[ast.Module]) -> set[str]:
    """Return the connection ids named by ``*_CONN_ID`` constants and ``*conn_id=`` arguments."""
    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                names = [target.id for target in node.targets if isinstance(target, ast.Name)]
                value = _string(node.value)
                if value and any(
                    name.endswith("CONN_ID") or name == "default_conn_name" for name in names
                ):
                    found.add(value)
            elif isinstance(node, ast.keyword) and node.arg in CONN_ID_KEYWORDS:
                value = _string(node.value)
                if value:
                    found.add(value)
    return found


def environment_names(trees: Iterable[ast.Module]) -> set[str]:
    """Return the environment variables read with ``os.environ``/``env`` ``.get`` or ``[...]``."""
    found: set[str] = set()
    for tree in trees:
        constants = _string_constants(tree)

        def resolve(node: ast.AST, constants: dict[str, str] = constants) -> str | None:
            if isinstance(node, ast.Name):
                return constants.get(node.id)
            return _string(node)

        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Call) and _call_name(node) in ("get", "getenv") and node.args:
                receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
                if _call_name(node) == "getenv" or _reads_environment(receiver):
                    name = resolve(node.args[0])
            elif isinstance(node, ast.Subscript) and _reads_environment(node.value):
                name = resolve(node.slice)
            if name and ENV_NAME.match(name):
                found.add(name)
    return found


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Map names bound once to a string literal, in any scope of the module, to that string."""
    bound: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and (value := _string(node.value)) is not None:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(value)
    return {name: values[0] for name, values in bound.items() if len(set(values)) == 1}


def _reads_environment(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id in ("environ", "env")


def variable_names(trees: Iterable[ast.Module]) -> set[str]:
    """Return the Variables named by ``Variable.get``/``set`` calls and ``var.*`` templates."""
    found: set[str] = set()
    for tree in trees:
        constants = _string_constants(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "Variable"
                and node.args
            ):
                key = node.args[0]
                name = constants.get(key.id) if isinstance(key, ast.Name) else _string(key)
                found.add(name or "<computed>")
            elif text := _string(node):
                found.update(TEMPLATE_VARIABLE.findall(text))
    return found


def pool_names(trees: Iterable[ast.Module]) -> set[str]:
    """Return the pools named by ``pool=`` arguments."""
    return {
        _string(node.value) or "<computed>"
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg == "pool"
    }


def project_trees(root: Path = PROJECT_ROOT) -> list[ast.Module]:
    """Parse every task code file."""
    return [parse(path) for path in task_code_files(root)]
