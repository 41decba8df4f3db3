-- Data quality: the day has exactly one fact for every candidate and none for anything else.
-- Returns the offending repositories; an empty result passes.

select
    coalesce(c.repo_id, f.repo_id) as repo_id,
    case when f.repo_id is null then 'candidate without fact' else 'fact without candidate' end
        as problem
from (
    select repo_id from stg_repo_candidates where snapshot_date = %(snapshot_date)s
) as c
full outer join (
    select repo_id from fact_repo_snapshots where snapshot_date = %(snapshot_date)s
) as f
    on f.repo_id = c.repo_id
where c.repo_id is null or f.repo_id is null
order by 1;
