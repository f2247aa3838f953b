"""Submits N no-op tasks to Celery from several client processes, then waits until every result is stored.

The clock stops when the result backend holds N results, read with DBSIZE every 20 ms (cheap, so the
wait does not take CPU from the worker); the results' states are checked after the clock stops.
Prints one JSON line: tasks, clients, submit_seconds, total_seconds, succeeded, tasks_per_second.
"""
import json
import multiprocessing
import sys
import time

import redis

from noop_app import REDIS_URL, app, noop


def submit(count: int) -> list:
    ids = []
    # One producer for every message: the fastest per-task path Celery's client offers.
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            ids.append(noop.apply_async(producer=producer).id)
    return ids


def main() -> None:
    count = int(sys.argv[1])
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    client = redis.Redis.from_url(REDIS_URL)
    baseline = client.dbsize()
    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    start = time.monotonic()
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        ids = [task_id for part in pool.map(submit, shares) for task_id in part]
    submitted = time.monotonic()
    # Each stored result is one key, celery-task-meta-<id>; the broker's own keys are in the baseline
    # (plus its queue list and unacked hash, which may come and go: allow for them).
    while client.dbsize() - baseline < count:
        time.sleep(0.02)
    while len(client.keys("celery-task-meta-*")) < count:  # rarely loops: only while broker keys pad DBSIZE
        time.sleep(0.1)
    finished = time.monotonic()
    succeeded = 0
    for offset in range(0, len(ids), 10000):
        keys = [f"celery-task-meta-{task_id}" for task_id in ids[offset:offset + 10000]]
        for value in client.mget(keys):
            if value and json.loads(value).get("status") == "SUCCESS":
                succeeded += 1
    print(json.dumps({
        "tasks": count,
        "clients": clients,
        "submit_seconds": round(submitted - start, 3),
        "total_seconds": round(finished - start, 3),
        "succeeded": succeeded,
        "tasks_per_second": round(succeeded / (finished - start), 1),
    }))


if __name__ == "__main__":
    main()
