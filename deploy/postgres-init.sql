-- Runs once, when the compose PostgreSQL starts on an empty data volume, as POSTGRES_USER while
-- connected to POSTGRES_DB (`airflow`, Airflow's metadata). It adds the Trender warehouse as a
-- second database on the same server; the DAG's ensure_schema task creates its tables.
-- Credentials stay in .env: this file names no role and no password.
create database trender;
comment on database trender is 'Trender warehouse: raw, staging, analytics and ops layers';
