"""
Parse, and optionally run, ``trender_daily`` from a bare Airflow home; write what was seen as JSON.

The MWAA test starts this script with ``python -P`` and an environment naming only the bare home,
so ``trender`` can come only from that home's plugins folder, as on an MWAA worker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

DAG_ID = "trender_daily"


def inspect(run_at: str | None, conf: dict[str, Any]) -> dict[str, Any]:
    """Parse the DAGs folder, run the DAG once when asked, and describe the outcome."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])

    import trender
    from trender import warehouse

    result: dict[str, Any] = {
        "import_errors": {path: str(error) for path, error in bag.import_errors.items()},
        "dag_ids": sorted(bag.dags),
        "trender_file": trender.__file__,
        "sql_dir": str(warehouse.sql_dir()),
        "sys_path": list(sys.path),
    }
    if run_at and DAG_ID in bag.dags:
        run = bag.dags[DAG_ID].test(logical_date=dt.datetime.fromisoformat(run_at), run_conf=conf)
        result["run_id"] = run.run_id
        result["state"] = str(getattr(run.state, "value", run.state))
    return result


def main(argv: list[str] | None = None) -> int:
    """Write the outcome to the result file named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("result", type=Path, help="JSON file to write")
    parser.add_argument("--run-at", help="logical date (ISO 8601) to run the DAG at")
    parser.add_argument("--conf", default="{}", help="run conf as JSON")
    args = parser.parse_args(argv)
    outcome = inspect(args.run_at, json.loads(args.conf))
    args.result.write_text(json.dumps(outcome, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
