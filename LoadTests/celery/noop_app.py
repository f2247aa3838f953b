"""The Celery side of the comparison: one no-op task, Redis as broker and result backend.

Settings are Celery's defaults except where they would cost Celery throughput for nothing here:
no events, no gossip or mingle (the worker is started with --without-*), JSON serialisation.
Results are stored (the default), as Conveyor records every task's outcome in PostgreSQL.
"""
import os

from celery import Celery

REDIS_URL = os.environ["CELERY_COMPARE_REDIS_URL"]

app = Celery("noop_app", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_send_task_events=False,
    task_send_sent_event=False,
    broker_connection_retry_on_startup=True,
    result_expires=3600,
)


@app.task(name="noop")
def noop():
    return None
