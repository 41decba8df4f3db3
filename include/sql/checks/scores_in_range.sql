-- Data quality: recency, normalized stars and momentum of the day lie within [0, 1].
-- Returns the offending facts; an empty result passes.

select repo_id, recency_score, normalized_stars, momentum_score
from fact_repo_snapshots
where snapshot_date = %(snapshot_date)s
  and (
      recency_score not between 0 and 1
      or normalized_stars not between 0 and 1
      or momentum_score not between 0 and 1
  )
order by repo_id;
