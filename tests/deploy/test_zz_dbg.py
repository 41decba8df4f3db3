import datetime as dt
from tests.dags.dagrun import run_dag
def test_dbg(airflow_db, warehouse_url, github_conn):
    dr = run_dag(dt.datetime(2026, 12, 3, 14, tzinfo=dt.UTC), {"dev_mode": True})
    print("STATE", dr.state)
    from airflow.utils.session import create_session
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select
    with create_session() as s:
        for ti in s.scalars(select(TaskInstance).where(TaskInstance.run_id == dr.run_id)):
            print("TI", ti.task_id, ti.map_index, ti.state)
