-- Daily fact snapshot with the momentum score, formula version m1:
--   age_days         = snapshot_date - created_at (UTC dates)
--   recency          = 1.0 when age_days <= 14, else greatest(0.01, 0.5 ^ ((age_days - 14) / 60))
--   normalized_stars = stars / max(stars) within the category and day (0 when that max is 0)
--   momentum         = 0.7 * recency + 0.3 * normalized_stars
--   ranks            by momentum desc, stars desc, repo_id asc (per category, and overall)
--   star_velocity    = (stars - previous stars) / days since the nearest earlier snapshot
-- Grain: one row per repository per snapshot_date, referencing the dimension version valid then.
-- Idempotent: a rerun of a day replaces that day's rows; other days are untouched.

-- The rank windows sort the whole day; keep those sorts in memory (this transaction only).
set local work_mem = '64MB';

delete from fact_repo_snapshots
where snapshot_date = %(snapshot_date)s;

insert into fact_repo_snapshots (
    snapshot_date, repo_id, repo_key, language_id, category, stars, forks, open_issues,
    age_days, recency_score, normalized_stars, momentum_score, rank_in_language, rank_overall,
    previous_snapshot_date, star_velocity, formula_version, run_id
)
with base as (
    select
        c.snapshot_date,
        c.repo_id,
        c.category,
        s.stars,
        s.forks,
        s.open_issues,
        s.primary_language,
        c.snapshot_date - (s.created_at at time zone 'UTC')::date as age_days
    from stg_repo_candidates as c
    inner join stg_repos_validated as s
        on s.snapshot_date = c.snapshot_date and s.repo_id = c.repo_id
    where c.snapshot_date = %(snapshot_date)s
),

scored as (
    select
        base.*,
        case
            when age_days <= 14 then 1.0::float8
            else greatest(0.01::float8, power(0.5::float8, (age_days - 14)::float8 / 60.0::float8))
        end as recency_score,
        coalesce(
            stars::float8 / nullif(max(stars) over (partition by category), 0)::float8,
            0.0::float8
        ) as normalized_stars
    from base
),

momentum as (
    select
        scored.*,
        0.7::float8 * recency_score + 0.3::float8 * normalized_stars as momentum_score
    from scored
)

select
    m.snapshot_date,
    m.repo_id,
    d.repo_key,
    l.language_id,
    m.category,
    m.stars,
    m.forks,
    m.open_issues,
    m.age_days,
    m.recency_score,
    m.normalized_stars,
    m.momentum_score,
    row_number() over (
        partition by m.category order by m.momentum_score desc, m.stars desc, m.repo_id
    ) as rank_in_language,
    row_number() over (order by m.momentum_score desc, m.stars desc, m.repo_id) as rank_overall,
    prev.snapshot_date as previous_snapshot_date,
    (m.stars - prev.stars)::float8 / (m.snapshot_date - prev.snapshot_date) as star_velocity,
    'm1' as formula_version,
    %(run_id)s as run_id
from momentum as m
inner join dim_repositories as d
    on d.repo_id = m.repo_id
   and d.valid_from <= m.snapshot_date
   and (d.valid_to is null or d.valid_to > m.snapshot_date)
left join dim_languages as l
    on l.language_name = m.primary_language
left join lateral (
    select f.snapshot_date, f.stars
    from fact_repo_snapshots as f
    where f.repo_id = m.repo_id
      and f.snapshot_date < m.snapshot_date
    order by f.snapshot_date desc
    limit 1
) as prev on true;
