"""The minimal environment of an Airflow home that holds nothing of this checkout."""

from __future__ import annotations

import os
from pathlib import Path

# Only what a process needs to run at all; nothing that could point back at the checkout.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def bare_env(home: Path) -> dict[str, str]:
    """Return the environment of an Airflow home with its own dags, plugins and SQLite."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
    )
    return env
