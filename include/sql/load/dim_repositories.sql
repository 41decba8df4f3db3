-- SCD Type 2 load of dim_repositories from the day's candidates.
-- Grain: one row per version of a repository (natural key: GitHub's repository id).
-- Idempotent: unchanged input writes nothing; a rerun of the same day corrects that day's version
-- in place instead of opening another; a repository absent from the day is left open.
-- A backfill (a snapshot_date before the repository's first version) extends the history
-- backwards without touching later versions; a date some version already covers is left as is.

-- Serialize concurrent loads so two runs cannot both open a current version.
select pg_advisory_xact_lock(hashtext('trender.dim_repositories'));

-- Hashing and joining the day's candidates: keep it in memory (this transaction only).
set local work_mem = '64MB';

insert into dim_languages (language_name)
select distinct s.primary_language
from stg_repo_candidates as c
inner join stg_repos_validated as s
    on s.snapshot_date = c.snapshot_date and s.repo_id = c.repo_id
where c.snapshot_date = %(snapshot_date)s
  and s.primary_language is not null
on conflict (language_name) do nothing;

create temporary table scd_source on commit drop as
with candidates as (
    select
        c.snapshot_date,
        s.repo_id,
        s.full_name,
        s.description,
        s.homepage,
        s.primary_language,
        c.category,
        s.topics,
        s.license_spdx,
        s.is_archived,
        s.is_fork,
        s.default_branch,
        s.readme_hash,
        s.created_at
    from stg_repo_candidates as c
    inner join stg_repos_validated as s
        on s.snapshot_date = c.snapshot_date and s.repo_id = c.repo_id
    where c.snapshot_date = %(snapshot_date)s
)

select
    candidates.*,
    md5(jsonb_build_array(
        full_name, description, homepage, primary_language, category, topics,
        license_spdx, is_archived, is_fork, default_branch, readme_hash
    )::text) as attributes_hash
from candidates;

analyze scd_source;

-- Backfill, same attributes as the first version: start that version earlier.
update dim_repositories as d
set valid_from = s.snapshot_date
from scd_source as s
where d.repo_id = s.repo_id
  and d.valid_from > s.snapshot_date
  and d.attributes_hash = s.attributes_hash
  and d.valid_from = (
      select min(first.valid_from) from dim_repositories as first where first.repo_id = s.repo_id
  );

-- Backfill, other attributes: a closed version that ends where the first one begins.
insert into dim_repositories (
    repo_id, full_name, description, homepage, primary_language, category, topics,
    license_spdx, is_archived, is_fork, default_branch, readme_hash, created_at,
    attributes_hash, valid_from, valid_to, is_current
)
select
    s.repo_id, s.full_name, s.description, s.homepage, s.primary_language, s.category, s.topics,
    s.license_spdx, s.is_archived, s.is_fork, s.default_branch, s.readme_hash, s.created_at,
    s.attributes_hash, s.snapshot_date, first.valid_from, false
from scd_source as s
inner join lateral (
    select min(d.valid_from) as valid_from from dim_repositories as d where d.repo_id = s.repo_id
) as first on first.valid_from > s.snapshot_date;

-- A second load of the same day replaces the version it opened.
update dim_repositories as d
set full_name = s.full_name,
    description = s.description,
    homepage = s.homepage,
    primary_language = s.primary_language,
    category = s.category,
    topics = s.topics,
    license_spdx = s.license_spdx,
    is_archived = s.is_archived,
    is_fork = s.is_fork,
    default_branch = s.default_branch,
    readme_hash = s.readme_hash,
    created_at = s.created_at,
    attributes_hash = s.attributes_hash
from scd_source as s
where d.repo_id = s.repo_id
  and d.is_current
  and d.valid_from = s.snapshot_date
  and d.attributes_hash <> s.attributes_hash;

-- A change on a later day closes the current version ...
update dim_repositories as d
set valid_to = s.snapshot_date,
    is_current = false
from scd_source as s
where d.repo_id = s.repo_id
  and d.is_current
  and d.valid_from < s.snapshot_date
  and d.attributes_hash <> s.attributes_hash;

-- ... and opens the next one; first sight opens the first.
insert into dim_repositories (
    repo_id, full_name, description, homepage, primary_language, category, topics,
    license_spdx, is_archived, is_fork, default_branch, readme_hash, created_at,
    attributes_hash, valid_from, valid_to, is_current
)
select
    s.repo_id, s.full_name, s.description, s.homepage, s.primary_language, s.category, s.topics,
    s.license_spdx, s.is_archived, s.is_fork, s.default_branch, s.readme_hash, s.created_at,
    s.attributes_hash, s.snapshot_date, null, true
from scd_source as s
where not exists (
    select 1
    from dim_repositories as d
    where d.repo_id = s.repo_id
      and (d.is_current or d.valid_to > s.snapshot_date)
)
on conflict (repo_id) where is_current do nothing;
