"""The cost of POST 1 message in process, without the network or wrk.

``python -m bench.post_cost [--metrics on|off] [--batches N]`` builds the
daemon's Site over a sqlite file (group commit, as the daemon runs) and feeds
it batches of 16 whole POST requests on 16 connections (in-memory
transports), then runs the batch's commit as the reactor turn would. It
prints microseconds per post (noisy on a shared machine) and, under
``valgrind --tool=cachegrind``, the instruction count of two runs of
different lengths gives instructions per post, which the noise does not
move (``--cachegrind`` does that and prints the difference)::

    python -m bench.post_cost --cachegrind            # metrics on and off
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

#: Posts a batch: one reactor turn's worth at 16 connections.
BATCH = 16


def build(path, metrics):
    from twisted.internet import reactor
    from twisted.internet.testing import StringTransport

    from marconi_tx import config
    from marconi_tx.metrics import daemon_metrics
    from marconi_tx.storage.sqlite.driver import SqliteDriver
    from marconi_tx.transport.http.app import build_resource
    from marconi_tx.transport.http.site import make_site

    cfg = config.load(overrides=[("drivers", "metrics", "true" if metrics else "false")])
    driver = SqliteDriver(path, reactor, group_commit=True)
    driver.open_now()
    driver.queues.create(None, "q")
    driver._turn.cancel()
    driver._flush()
    metrics = daemon_metrics(cfg, reactor)
    served = driver if metrics is None else metrics.watch_storage(driver)
    if metrics is not None:  # the depth tracking listens to posts
        metrics.depths.startService()
    site = make_site(build_resource(served, cfg, metrics), 1 << 20)
    site.timeOut = None
    channels = []
    for _ in range(BATCH):
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channels.append((channel, transport))
    body = b'[{"ttl": 300, "body": {"event": "x"}}]'
    raw = (b"POST /v1/queues/q/messages HTTP/1.1\r\nHost: localhost\r\n"
           b"Client-ID: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body

    def batch():
        for channel, _ in channels:
            channel.dataReceived(raw)
        turn = driver._turn
        turn.cancel()
        driver._flush()
        for _, transport in channels:
            answer = transport.value()
            if not answer.startswith(b"HTTP/1.1 201 "):
                raise RuntimeError(answer[:200])
            transport.clear()

    return driver, batch


def run(metrics, batches):
    with tempfile.TemporaryDirectory() as folder:
        driver, batch = build(os.path.join(folder, "cost.db"), metrics)
        for _ in range(20):  # warm: caches, the match cache, first labels
            batch()
        started = time.perf_counter()
        for _ in range(batches):
            batch()
        elapsed = time.perf_counter() - started
        driver.close()
    return elapsed / (batches * BATCH) * 1e6


def instructions(metrics, batches):
    """Instructions of a whole run under cachegrind."""
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no",
             f"--cachegrind-out-file={folder}/cg.out", sys.executable, "-m", "bench.post_cost",
             "--metrics", "on" if metrics else "off", "--batches", str(batches)],
            capture_output=True, text=True, check=True)
    match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    return int(match.group(1).replace(",", ""))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.post_cost",
                                description=__doc__.split("\n")[0])
    p.add_argument("--metrics", choices=("on", "off"), default="on")
    p.add_argument("--batches", type=int, default=500)
    p.add_argument("--cachegrind", action="store_true",
                   help="instructions per post, metrics on and off (about a minute)")
    args = p.parse_args(argv)
    if not args.cachegrind:
        print(f"metrics {args.metrics}: {run(args.metrics == 'on', args.batches):.1f} µs a post")
        return
    short, long = 10, 10 + args.batches
    for metrics in (False, True):
        per_post = ((instructions(metrics, long) - instructions(metrics, short))
                    / ((long - short) * BATCH))
        print(f"metrics {'on' if metrics else 'off'}: {per_post / 1000:.1f} thousand "
              f"instructions a post")


if __name__ == "__main__":
    main()
