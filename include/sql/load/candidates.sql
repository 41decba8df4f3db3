-- The day's scoring candidates, taken from this run's validated repositories: the top 50 of each
-- language category by stars (ties broken by repository id) and every render project.
-- Grain: one row per repository per snapshot_date. Idempotent: replaces that day's candidates.

delete from stg_repo_candidates
where snapshot_date = %(snapshot_date)s;

insert into stg_repo_candidates (snapshot_date, repo_id, category, stars)
with ranked as (
    select
        snapshot_date,
        repo_id,
        category,
        stars,
        row_number() over (partition by category order by stars desc, repo_id) as stars_rank
    from stg_repos_validated
    where snapshot_date = %(snapshot_date)s
      and run_id = %(run_id)s
)

select snapshot_date, repo_id, category, stars
from ranked
where category = 'render'
   or stars_rank <= %(per_language_limit)s;

-- Fresh statistics for the joins of the dimension and fact loads that follow.
analyze stg_repo_candidates;
