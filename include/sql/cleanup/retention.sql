-- Tiered retention: raw 7 days, staging 7 days, analytics 30 days, counted back from the run's
-- snapshot_date. A dimension version goes only when it is closed, ended before the analytics
-- window and no fact refers to it. Returns one row with the deleted (or, in a dry run, the
-- deletable) row count per table. Idempotent.

with
raw_repos as (
    delete from raw_github_repos
    where snapshot_date < %(snapshot_date)s::date - %(raw_days)s
      and not %(dry_run)s
    returning 1
),

raw_searches as (
    delete from raw_github_searches
    where snapshot_date < %(snapshot_date)s::date - %(raw_days)s
      and not %(dry_run)s
    returning 1
),

stg_repos as (
    delete from stg_repos_validated
    where snapshot_date < %(snapshot_date)s::date - %(staging_days)s
      and not %(dry_run)s
    returning 1
),

stg_errors as (
    delete from stg_validation_errors
    where snapshot_date < %(snapshot_date)s::date - %(staging_days)s
      and not %(dry_run)s
    returning 1
),

stg_candidates as (
    delete from stg_repo_candidates
    where snapshot_date < %(snapshot_date)s::date - %(staging_days)s
      and not %(dry_run)s
    returning 1
),

facts as (
    delete from fact_repo_snapshots
    where snapshot_date < %(snapshot_date)s::date - %(analytics_days)s
      and not %(dry_run)s
    returning repo_key
),

expired_versions as (
    select d.repo_key
    from dim_repositories as d
    where not d.is_current
      and d.valid_to < %(snapshot_date)s::date - %(analytics_days)s
      and not exists (
          select 1
          from fact_repo_snapshots as f
          where f.repo_key = d.repo_key
            and f.snapshot_date >= %(snapshot_date)s::date - %(analytics_days)s
      )
),

versions as (
    delete from dim_repositories
    where repo_key in (select repo_key from expired_versions)
      and not %(dry_run)s
    returning 1
)

select
    case when %(dry_run)s then (
        select count(*) from raw_github_repos
        where snapshot_date < %(snapshot_date)s::date - %(raw_days)s
    ) else (select count(*) from raw_repos) end as raw_github_repos,
    case when %(dry_run)s then (
        select count(*) from raw_github_searches
        where snapshot_date < %(snapshot_date)s::date - %(raw_days)s
    ) else (select count(*) from raw_searches) end as raw_github_searches,
    case when %(dry_run)s then (
        select count(*) from stg_repos_validated
        where snapshot_date < %(snapshot_date)s::date - %(staging_days)s
    ) else (select count(*) from stg_repos) end as stg_repos_validated,
    case when %(dry_run)s then (
        select count(*) from stg_validation_errors
        where snapshot_date < %(snapshot_date)s::date - %(staging_days)s
    ) else (select count(*) from stg_errors) end as stg_validation_errors,
    case when %(dry_run)s then (
        select count(*) from stg_repo_candidates
        where snapshot_date < %(snapshot_date)s::date - %(staging_days)s
    ) else (select count(*) from stg_candidates) end as stg_repo_candidates,
    case when %(dry_run)s then (
        select count(*) from fact_repo_snapshots
        where snapshot_date < %(snapshot_date)s::date - %(analytics_days)s
    ) else (select count(*) from facts) end as fact_repo_snapshots,
    case when %(dry_run)s then (select count(*) from expired_versions)
    else (select count(*) from versions) end as dim_repositories;
