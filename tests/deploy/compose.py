"""Read docker-compose.yaml and .env files the way docker compose does, for the deployment tests."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.code_facts import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
# Compose's interpolation: $$ escapes a dollar; ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?error}, ${NAME?error} and $NAME substitute.
_REFERENCE = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(LookupError):
    """Raised when a ``${NAME:?message}`` variable is unset or empty."""


def load_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """Parse the compose file without interpolation (anchors and merge keys resolved)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """Parse a ``NAME=value`` env file, skipping comments and blank lines."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f"not a NAME=value line: {line!r}"
            values[name.strip()] = value.strip()
    return values


def referenced_variables(value: Any) -> set[str]:
    """Return every variable compose would substitute in a parsed compose value."""
    if isinstance(value, str):
        return {
            match["braced"] or match["bare"]
            for match in _REFERENCE.finditer(value)
            if match.group() != "$$"
        }
    if isinstance(value, Mapping):
        return set().union(*(referenced_variables(item) for item in value.values()), set())
    if isinstance(value, list):
        return set().union(*(referenced_variables(item) for item in value), set())
    return set()


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Substitute variables in every string of a parsed compose value, as compose does."""
    if isinstance(value, str):
        return _REFERENCE.sub(lambda match: _substitute(match, env), value)
    if isinstance(value, Mapping):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group() == "$$":
        return "$"
    name = match["braced"] or match["bare"]
    op, arg = match["op"], match["arg"] or ""
    current = env.get(name)
    unset = current is None or (op is not None and op.startswith(":") and current == "")
    if op in (":?", "?") and unset:
        raise MissingVariable(f"{name}: {arg}")
    if op in (":-", "-") and unset:
        return arg
    return current or ""


def load(env: Mapping[str, str]) -> dict[str, Any]:
    """Parse and interpolate the compose file with the given variables."""
    return interpolate(load_raw(), env)
