-- Staging layer: typed, validated repositories, one row per repository per snapshot day.
-- Migration: applied once, recorded in schema_migrations.

create table if not exists stg_repos_validated (
    snapshot_date     date        not null,
    repo_id           bigint      not null,
    run_id            text        not null,
    category          text        not null,
    full_name         text        not null,
    owner_login       text        not null,
    repo_name         text        not null,
    description       text,
    homepage          text,
    primary_language  text,
    topics            jsonb       not null default '[]'::jsonb,
    license_spdx      text,
    is_archived       boolean     not null,
    is_fork           boolean     not null,
    default_branch    text,
    stars             integer     not null,
    forks             integer     not null,
    open_issues       integer     not null,
    created_at        timestamptz not null,
    updated_at        timestamptz not null,
    pushed_at         timestamptz,
    readme_path       text,
    readme_text       text,
    readme_hash       text,
    validated_at      timestamptz not null default now(),
    primary key (snapshot_date, repo_id)
);

-- Repositories that failed validation: logged, counted and kept, never silently dropped.
-- One row per repository per category per snapshot day.
create table if not exists stg_validation_errors (
    run_id         text        not null,
    snapshot_date  date        not null,
    category       text        not null,
    repo_id        bigint      not null,
    full_name      text,
    reason         text        not null,
    recorded_at    timestamptz not null default now(),
    primary key (snapshot_date, category, repo_id)
);

-- The day's scoring candidates: top 50 per language by stars, and every render project.
create table if not exists stg_repo_candidates (
    snapshot_date  date    not null,
    repo_id        bigint  not null,
    category       text    not null,
    stars          integer not null,
    primary key (snapshot_date, repo_id)
);
