-- Migration: applied once, recorded in schema_migrations.
-- READMEs over the documented size limit are stored truncated; keep their original size.

alter table raw_github_repos
    add column if not exists readme_original_bytes integer,
    add column if not exists readme_truncated boolean not null default false;

alter table stg_repos_validated
    add column if not exists readme_truncated boolean not null default false;
