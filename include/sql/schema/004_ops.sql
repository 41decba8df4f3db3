-- Operations tables: one row per DAG run with its task tree, and the task spans it is built from.
-- Migration: applied once, recorded in schema_migrations.

create table if not exists fact_workflow_runs (
    run_id           text        primary key,
    dag_id           text        not null,
    trace_id         text        not null,
    snapshot_date    date        not null,
    started_at       timestamptz,
    completed_at     timestamptz not null,
    status           text        not null,
    success          boolean     not null,
    repos_processed  integer     not null,
    execution_time   double precision not null,
    cleanup_stats    jsonb       not null default '{}'::jsonb,
    summary          jsonb       not null,
    task_tree        jsonb       not null
);

-- One row per task instance try, written by the task itself (Airflow 3 tasks cannot read the
-- metadata database, so record_run assembles the tree from these rows and the task states).
create table if not exists ops_task_spans (
    run_id       text        not null,
    task_id      text        not null,
    map_index    integer     not null default -1,
    try_number   integer     not null,
    label        text,
    state        text        not null,
    started_at   timestamptz,
    ended_at     timestamptz,
    metrics      jsonb       not null default '{}'::jsonb,
    error        text,
    primary key (run_id, task_id, map_index, try_number)
);
