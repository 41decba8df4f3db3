-- Raw layer: GitHub responses as received, one row per repository per category per run.
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
    primary key (run_id, category, repo_id),
    constraint raw_github_repos_readme_status_check
        check (readme_status in ('ok', 'missing', 'not_modified', 'error'))
);

create index if not exists raw_github_repos_snapshot_date_idx
    on raw_github_repos (snapshot_date);

-- One row per search page requested, so a run can prove what GitHub answered.
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
    primary key (run_id, category, page)
);

create index if not exists raw_github_searches_snapshot_date_idx
    on raw_github_searches (snapshot_date);
