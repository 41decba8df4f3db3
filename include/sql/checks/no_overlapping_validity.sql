-- Data quality: the validity ranges of one repository never overlap.
-- Returns the offending pairs of versions; an empty result passes.

select a.repo_id, a.repo_key, b.repo_key as overlapping_repo_key
from dim_repositories as a
inner join dim_repositories as b
    on b.repo_id = a.repo_id
   and b.repo_key > a.repo_key
   and daterange(a.valid_from, a.valid_to) && daterange(b.valid_from, b.valid_to)
order by a.repo_id, a.repo_key;
