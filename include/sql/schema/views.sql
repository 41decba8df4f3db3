-- Dashboard views over the analytics layer. Repeatable: recreated after every migration run.

-- The latest snapshot day's ranking over all categories, with current repository attributes.
create or replace view analytics_trending_now as
select
    f.snapshot_date,
    f.rank_overall,
    f.rank_in_language,
    f.category,
    d.full_name,
    d.description,
    d.primary_language,
    f.stars,
    f.star_velocity,
    f.age_days,
    round(f.momentum_score::numeric, 4) as momentum_score,
    f.repo_id
from fact_repo_snapshots as f
inner join dim_repositories as d on d.repo_key = f.repo_key
where f.snapshot_date = (select max(snapshot_date) from fact_repo_snapshots);

-- The latest day's render projects, best first.
create or replace view analytics_render_showcase as
select
    snapshot_date,
    rank_in_language,
    full_name,
    description,
    primary_language,
    stars,
    star_velocity,
    age_days,
    momentum_score,
    repo_id
from analytics_trending_now
where category = 'render';

-- Per category and day: how many repositories, their stars and momentum.
create or replace view analytics_language_trends as
select
    snapshot_date,
    category,
    count(*) as repositories,
    sum(stars) as total_stars,
    round(avg(momentum_score)::numeric, 4) as avg_momentum,
    round(avg(star_velocity)::numeric, 2) as avg_star_velocity
from fact_repo_snapshots
group by snapshot_date, category;

-- One repository's history as a time series, with the name it had on each day.
create or replace view analytics_repo_history as
select
    f.repo_id,
    f.snapshot_date,
    d.full_name,
    f.category,
    f.stars,
    f.star_velocity,
    f.momentum_score,
    f.rank_in_language,
    f.rank_overall,
    f.formula_version
from fact_repo_snapshots as f
inner join dim_repositories as d on d.repo_key = f.repo_key;
