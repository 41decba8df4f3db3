-- The day's scoring candidates, taken from this run's validated repositories: the top 50 of each
-- language category by stars (ties broken by repository id) and every render project.
-- Grain: one row per repository per snapshot_date. Idempotent: a run replaces the day's
-- candidates of the categories it searched or validated; other categories stay as an earlier
-- run of the day left them (a dev-mode or single-language rerun never wipes the rest).

delete from stg_repo_candidates
where snapshot_date = %(snapshot_date)s
  and category in (
      select category from raw_github_searches
      where snapshot_date = %(snapshot_date)s and run_id = %(run_id)s
      union
      select category from stg_repos_validated
      where snapshot_date = %(snapshot_date)s and run_id = %(run_id)s
  );

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
   or stars_rank <= %(per_language_limit)s
-- A repository an earlier run of the day placed in render stays there (render wins).
on conflict (snapshot_date, repo_id) do update set
    category = excluded.category,
    stars = excluded.stars
where stg_repo_candidates.category <> 'render' or excluded.category = 'render';

-- Fresh statistics for the joins of the dimension and fact loads that follow.
analyze stg_repo_candidates;
