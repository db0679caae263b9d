"""How long each sqlite driver call holds the reactor thread.

``python -m bench.sqlite_calls [--depths 1000,100000]`` fills a queue on a
temporary file through the real driver and times each call type, in process,
with the queue at each depth. The driver runs these calls synchronously in
the reactor thread (except ``stats``, which scans on its own thread), so
these durations are exactly how long one request blocks all others.
"""

import argparse
import os
import tempfile
import time
import uuid

from twisted.internet.task import Clock

from marconi_tx.storage.sqlite.driver import SqliteDriver

CALLS = 300


def percentiles(samples):
    samples = sorted(samples)
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def timed(call, count=CALLS):
    """p50 and p99 in microseconds of ``call()`` run ``count`` times."""
    spent = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        spent.append((time.perf_counter() - start) * 1e6)
    return percentiles(spent)


def measure(depths, workdir):
    clock = Clock()
    clock.advance(1_700_000_000)
    driver = SqliteDriver(os.path.join(workdir, "calls.db"), clock)
    driver.open_now()
    driver.queues.create(None, "q")
    client = uuid.uuid4()
    one = [{"ttl": 3600, "body": {"event": "x", "n": 1}}]
    batch = [{"ttl": 3600, "body": {"n": i, "pad": "x" * 100}} for i in range(1000)]
    filled = 0
    rows = []
    for depth in depths:
        while filled < depth:
            driver.messages.post(None, "q", batch, client)
            filled += len(batch)

        def cycle():
            claim = driver.claims.create(None, "q", 60, 60, 10).result
            driver.messages.bulk_delete(None, "q", [m.id for m in claim.messages])

        for name, call in (("post 1", lambda: driver.messages.post(None, "q", one, client)),
                           ("post 10", lambda: driver.messages.post(None, "q", one * 10, client)),
                           ("list 10", lambda: driver.messages.list(None, "q", limit=10)),
                           ("claim 10 + delete", cycle)):
            rows.append((depth, name, *timed(call)))
        filled = driver.db.execute("SELECT count(*) FROM messages").fetchone()[0]
    driver.close()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="1000,100000",
                        help="queue depths, e.g. 1000,100000,1000000")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        rows = measure(depths, workdir)
    print(f"{'depth':>8}  {'call':<18} {'p50 us':>8} {'p99 us':>8}")
    for depth, name, p50, p99 in rows:
        print(f"{depth:>8}  {name:<18} {p50:>8.0f} {p99:>8.0f}")


if __name__ == "__main__":
    main()
