"""Submits N no-op tasks to Celery as fast as one client can, then waits until every result is stored.

Prints one JSON line: tasks, submit_seconds, total_seconds, succeeded, tasks_per_second (end to end).
"""
import json
import sys
import time

from noop_app import app, noop


def main() -> None:
    count = int(sys.argv[1])
    start = time.monotonic()
    ids = []
    # One producer for every message: the fastest per-task path Celery's client offers.
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            ids.append(noop.apply_async(producer=producer).id)
    submitted = time.monotonic()
    succeeded = 0
    # get_many polls the result keys with MGET and yields each result as it is stored.
    for _task_id, meta in app.backend.get_many(ids, timeout=3600, interval=0.05):
        if meta.get("status") == "SUCCESS":
            succeeded += 1
    finished = time.monotonic()
    print(json.dumps({
        "tasks": count,
        "submit_seconds": round(submitted - start, 3),
        "total_seconds": round(finished - start, 3),
        "succeeded": succeeded,
        "tasks_per_second": round(succeeded / (finished - start), 1),
    }))


if __name__ == "__main__":
    main()
