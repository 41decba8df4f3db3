-- Data quality: the day's ranks run 1..n without gaps or repeats, per category and overall.
-- Returns the offending rankings; an empty result passes.

with per_category as (
    select
        category as ranking,
        count(*) as facts,
        count(distinct rank_in_language) as distinct_ranks,
        min(rank_in_language) as min_rank,
        max(rank_in_language) as max_rank
    from fact_repo_snapshots
    where snapshot_date = %(snapshot_date)s
    group by category
),

overall as (
    select
        'overall' as ranking,
        count(*) as facts,
        count(distinct rank_overall) as distinct_ranks,
        min(rank_overall) as min_rank,
        max(rank_overall) as max_rank
    from fact_repo_snapshots
    where snapshot_date = %(snapshot_date)s
    having count(*) > 0
)

select ranking, facts, distinct_ranks, min_rank, max_rank
from (select * from per_category union all select * from overall) as rankings
where distinct_ranks <> facts or min_rank <> 1 or max_rank <> facts
order by ranking;
