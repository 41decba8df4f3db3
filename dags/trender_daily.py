"""
# Trender daily

Finds the GitHub repositories gaining momentum in **Python**, **TypeScript** and **Go**, plus young
projects that deploy with a root `render.yaml`, and loads them into the warehouse
(`trender_postgres`): raw responses, validated staging rows, an SCD Type 2 repository dimension
and a daily fact snapshot with a momentum score (formula `m1`).

Steps, in order:

- `ensure_schema`: applies pending warehouse migrations (each once, recorded) and refreshes
  the dashboard views.
- `resolve_run`: settles the run's date, languages and limits from the params and `DEV_MODE`;
  `list_languages` hands the languages to the fan-out.
- `fetch_language_repos`: one mapped task per language; the top repositories by stars created
  in the last 180 days and pushed in the last 30, with their READMEs.
- `fetch_render_repos`: code search for a root `render.yaml`; projects created in the last 18
  months (skipped in dev mode).
- `plan_batches`: splits everything fetched into batches of 10.
- `analyze_repo_batch`: validates each batch into staging; a bad repository is skipped, counted
  and kept in `stg_validation_errors`.
- `aggregate_results`: candidates, the SCD Type 2 dimension, the facts, then data quality checks.
- `cleanup_old_data`: retention (raw and staging 7 days, analytics 30 days); never fails the run.
- `record_run`: stores the run tree and summary in `fact_workflow_runs`, then fails the run if a
  required task failed.

Trigger it with params from the UI form, or `airflow dags trigger trender_daily --conf
'{"dev_mode": true}'`. Runs without a logical date are dated by their `run_after`.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import Asset, Param, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from trender import pipeline, trace, warehouse
from trender.settings import CANDIDATES_PER_LANGUAGE, LANGUAGE_CATEGORIES, MAX_REPO_LIMIT

DAG_ID = "trender_daily"
SNAPSHOT_DATE = "{{ ti.xcom_pull(task_ids='resolve_run')['snapshot_date'] }}"
LOAD_PARAMETERS = {
    "snapshot_date": SNAPSHOT_DATE,
    "run_id": "{{ run_id }}",
    "per_language_limit": CANDIDATES_PER_LANGUAGE,
}

# Downstream DAGs can be scheduled on fresh analytics: the fact load updates this asset.
DAILY_SNAPSHOTS = Asset(
    name="trender_fact_repo_snapshots", uri="x-trender://warehouse/fact_repo_snapshots"
)
# Seconds before the first retry (then doubling); lower it for local test runs.
RETRY_DELAY_SECONDS = int(os.environ.get("TRENDER_RETRY_DELAY_SECONDS", "30"))

default_args: dict[str, Any] = {
    "owner": "trender",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=RETRY_DELAY_SECONDS),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=5),
    "execution_timeout": dt.timedelta(minutes=20),
    "on_execute_callback": trace.on_task_start,
    "on_success_callback": trace.on_task_success,
    "on_failure_callback": trace.on_task_failure,
    "on_retry_callback": trace.on_task_retry,
}

params = {
    "dev_mode": Param(
        None,
        type=["null", "boolean"],
        title="Dev mode",
        description="Python only, DEV_REPO_LIMIT repositories (default 5), no render search. "
        "Empty: the DEV_MODE environment variable decides.",
    ),
    "repo_limit": Param(
        None,
        type=["null", "integer"],
        minimum=1,
        maximum=MAX_REPO_LIMIT,
        title="Repositories per search",
        description="Top repositories by stars taken from each search (1-100). Empty: 25, "
        "or DEV_REPO_LIMIT in dev mode.",
    ),
    "languages": Param(
        list(LANGUAGE_CATEGORIES),
        type="array",
        items={"type": "string", "enum": list(LANGUAGE_CATEGORIES)},
        uniqueItems=True,
        title="Languages",
        description="Languages to search. Dev mode searches Python only.",
    ),
    "include_render": Param(
        True,
        type="boolean",
        title="Include render projects",
        description="Also search for projects with a root render.yaml (skipped in dev mode).",
    ),
    "retention_dry_run": Param(
        False,
        type="boolean",
        title="Retention dry run",
        description="Count the rows retention would delete, and delete nothing.",
    ),
}


@dag(
    dag_id=DAG_ID,
    dag_display_name="Trender: daily GitHub momentum",
    description="Find fast-rising GitHub repositories and load their daily snapshot.",
    schedule="0 14 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params=params,
    tags=["trender", "github", "analytics"],
    doc_md=__doc__,
    template_searchpath=[str(warehouse.sql_dir())],
    render_template_as_native_obj=False,
)
def trender_daily() -> None:
    """Build the daily Trender pipeline."""

    @task
    def ensure_schema() -> list[str]:
        """Apply pending warehouse migrations (each once, recorded) and refresh the views."""
        return pipeline.ensure_schema()

    @task(doc_md="Resolve the run's date, languages and repository limit.")
    def resolve_run() -> dict[str, Any]:
        return pipeline.resolve_run(get_current_context())

    @task(doc_md="List the languages this run searches (mapping needs a plain list).")
    def list_languages(run: dict[str, Any]) -> list[str]:
        return list(run["languages"])

    @task(
        map_index_template="{{ map_label }}",
        max_active_tis_per_dagrun=4,
        doc_md="One instance per language: the top repositories by stars, created in the last "
        "180 days and pushed in the last 30, with their READMEs, into `raw_github_repos`.",
    )
    def fetch_language_repos(run: dict[str, Any], language: str) -> dict[str, Any]:
        """Search one language's top repositories and fetch their READMEs into the raw layer."""
        context = get_current_context()
        context["map_label"] = language
        return pipeline.fetch_language_repos(run, language, context)

    @task
    def fetch_render_repos(run: dict[str, Any]) -> dict[str, Any]:
        """Find young projects with a root render.yaml and fetch their READMEs."""
        if not run["include_render"]:
            raise AirflowSkipException("render search is off for this run (dev mode or param)")
        return pipeline.fetch_render_repos(run, get_current_context())

    # all_done: plan whatever was fetched, even when the render search was skipped or one
    # language failed; record_run still fails the run for the failed fetch.
    @task(trigger_rule="all_done")
    def plan_batches(run: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Split the run's fetched repositories into batches of 10."""
        return pipeline.plan_batches(run)

    @task(
        map_index_template="{{ map_label }}",
        doc_md="One instance per batch of 10, labelled like `Python 11-20`: validate into "
        "`stg_repos_validated`; a bad repository is skipped, counted and kept in "
        "`stg_validation_errors`.",
    )
    def analyze_repo_batch(run: dict[str, Any], batch: dict[str, Any]) -> dict[str, Any]:
        """Validate one batch into staging; bad repositories are skipped and counted."""
        context = get_current_context()
        context["map_label"] = batch["label"]
        return pipeline.analyze_repo_batch(run, batch, context)

    @task_group
    def aggregate_results(run: dict[str, Any]) -> None:
        """Load staging into the analytics layer and check it."""
        load_candidates = SQLExecuteQueryOperator(
            task_id="load_candidates",
            conn_id=warehouse.WAREHOUSE_CONN_ID,
            sql="load/candidates.sql",
            parameters=LOAD_PARAMETERS,
            split_statements=True,
            do_xcom_push=False,
            trigger_rule="all_done_min_one_success",
            doc_md="Take the top 50 per language and every render project as candidates.",
        )
        load_dimension = SQLExecuteQueryOperator(
            task_id="load_dim_repositories",
            conn_id=warehouse.WAREHOUSE_CONN_ID,
            sql="load/dim_repositories.sql",
            parameters=LOAD_PARAMETERS,
            split_statements=True,
            do_xcom_push=False,
            doc_md="SCD Type 2 load of the repository dimension.",
        )
        load_facts = SQLExecuteQueryOperator(
            task_id="load_fact_snapshots",
            conn_id=warehouse.WAREHOUSE_CONN_ID,
            sql="load/fact_repo_snapshots.sql",
            parameters=LOAD_PARAMETERS,
            split_statements=True,
            do_xcom_push=False,
            outlets=[DAILY_SNAPSHOTS],
            doc_md="Score the day's candidates (formula m1) and replace the day's facts.",
        )

        @task
        def check_warehouse(run: dict[str, Any]) -> dict[str, Any]:
            """Fail the run, naming the offending rows, when a data quality check finds any."""
            return pipeline.check_warehouse(run, get_current_context())

        load_candidates >> load_dimension >> load_facts >> check_warehouse(run)

    @task(trigger_rule="all_done")
    def cleanup_old_data(run: dict[str, Any] | None) -> dict[str, Any]:
        """Apply the retention policy; a failure is logged and never fails the run."""
        return pipeline.cleanup_old_data(run, get_current_context())

    @task(trigger_rule="all_done", retries=0)
    def record_run() -> None:
        """Store the run tree and summary, then fail the run if a required task failed."""
        context = get_current_context()
        ti = context["ti"]
        summary, failed = pipeline.record_run(
            ti.xcom_pull(task_ids="resolve_run"),
            ti.xcom_pull(task_ids="cleanup_old_data"),
            context,
        )
        ti.xcom_push(key="return_value", value=summary)
        if not summary["success"]:
            raise AirflowFailException(
                f"required tasks failed: {', '.join(failed) or 'see the run tree'}"
            )

    run = resolve_run()
    ensure_schema() >> run
    language_fetches = fetch_language_repos.partial(run=run).expand(language=list_languages(run))
    render_fetch = fetch_render_repos(run)
    batches = plan_batches(run)
    [language_fetches, render_fetch] >> batches
    analyses = analyze_repo_batch.partial(run=run).expand(batch=batches)
    aggregate = aggregate_results(run)
    analyses >> aggregate
    cleanup = cleanup_old_data(run)
    aggregate >> cleanup >> record_run()


dag = trender_daily()
