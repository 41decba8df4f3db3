-- What the day's loads hold: candidates and facts per day, and dimension versions opened that
-- day. One row; read-only.

select
    (select count(*) from stg_repo_candidates where snapshot_date = %(snapshot_date)s)
        as candidates,
    (select count(*) from fact_repo_snapshots where snapshot_date = %(snapshot_date)s)
        as facts,
    (select count(*) from dim_repositories where valid_from = %(snapshot_date)s)
        as versions_opened,
    (select count(*) from dim_repositories where is_current) as current_repositories;
