-- Data quality: every repository has exactly one current dimension version.
-- Returns the offending repositories; an empty result passes.

select repo_id, count(*) as current_versions
from dim_repositories
where is_current
group by repo_id
having count(*) <> 1
order by repo_id;
