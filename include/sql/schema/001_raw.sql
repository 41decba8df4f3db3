-- Raw layer: GitHub responses as received, one row per repository per category per snapshot
-- day; a rerun of the day replaces the day's rows (run_id names the run that wrote each row).
-- Migration: applied once, recorded in schema_migrations.

create table if not exists raw_github_repos (
    run_id          text        not null,
    snapshot_date   date        not null,
    category        text        not null,
    repo_id         bigint      not null,
    full_name       text        not null,
    search_query    text        not null,
    payload         jsonb       not null,
    readme_path     text,
    readme_text     text,
    readme_sha      text,
    readme_size     integer,
    readme_etag     text,
    readme_status   text        not null,
    readme_note     text,
    fetched_at      timestamptz not null default now(),
    primary key (snapshot_date, category, repo_id),
    constraint raw_github_repos_readme_status_check
        check (readme_status in ('ok', 'missing', 'not_modified', 'error'))
);

create index if not exists raw_github_repos_run_idx
    on raw_github_repos (run_id);

-- One row per search page requested per day, so a run can prove what GitHub answered.
create table if not exists raw_github_searches (
    run_id              text        not null,
    snapshot_date       date        not null,
    category            text        not null,
    search_type         text        not null,
    query               text        not null,
    page                integer     not null,
    total_count         integer     not null,
    incomplete_results  boolean     not null,
    item_count          integer     not null,
    fetched_at          timestamptz not null default now(),
    primary key (snapshot_date, category, page)
);

