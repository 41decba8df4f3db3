"""Run trender_daily with ``dag.test()`` against the test's warehouse and replay server."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from typing import Any

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "trender_daily.py"


def load_dag() -> Any:
    """Import the DAG file fresh and return its DAG object."""
    spec = importlib.util.spec_from_file_location("trender_daily_under_test", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def run_dag(logical_date: dt.datetime, conf: dict | None = None) -> Any:
    """Run the DAG once and return the finished DagRun."""
    return load_dag().test(logical_date=logical_date, run_conf=conf or {})
