-- Analytics layer: SCD Type 2 repository dimension, languages, and daily fact snapshots.
-- Migration: applied once, recorded in schema_migrations.

create table if not exists dim_languages (
    language_id    serial primary key,
    language_name  text   not null unique
);

create table if not exists dim_repositories (
    repo_key          bigserial primary key,
    repo_id           bigint      not null,
    full_name         text        not null,
    description       text,
    homepage          text,
    primary_language  text,
    category          text        not null,
    topics            jsonb       not null default '[]'::jsonb,
    license_spdx      text,
    is_archived       boolean     not null,
    is_fork           boolean     not null,
    default_branch    text,
    readme_hash       text,
    created_at        timestamptz not null,
    attributes_hash   text        not null,
    valid_from        date        not null,
    valid_to          date,
    is_current        boolean     not null default true,
    constraint dim_repositories_validity_check check (valid_to is null or valid_to > valid_from),
    constraint dim_repositories_current_check check (is_current = (valid_to is null)),
    unique (repo_id, valid_from)
);

-- Exactly one current version per repository.
create unique index if not exists dim_repositories_one_current_idx
    on dim_repositories (repo_id) where is_current;

create table if not exists fact_repo_snapshots (
    snapshot_date           date             not null,
    repo_id                 bigint           not null,
    repo_key                bigint           not null references dim_repositories (repo_key),
    language_id             integer          references dim_languages (language_id),
    category                text             not null,
    stars                   integer          not null,
    forks                   integer          not null,
    open_issues             integer          not null,
    age_days                integer          not null,
    recency_score           double precision not null,
    normalized_stars        double precision not null,
    momentum_score          double precision not null,
    rank_in_language        integer          not null,
    rank_overall            integer          not null,
    previous_snapshot_date  date,
    star_velocity           double precision,
    formula_version         text             not null,
    run_id                  text             not null,
    loaded_at               timestamptz      not null default now(),
    primary key (snapshot_date, repo_id)
);

create index if not exists fact_repo_snapshots_repo_idx
    on fact_repo_snapshots (repo_id, snapshot_date);
