"""The cost of POST 1 message in process, without the network or wrk.

``python -m bench.post_cost [--metrics on|off] [--batches N] [--api v1|v2] [--auth none|token]``
builds the
daemon's Site over a sqlite file (group commit, as the daemon runs) and feeds
it batches of 16 whole POST requests on 16 connections (in-memory
transports), then runs the batch's commit as the reactor turn would. It
prints microseconds per post (noisy on a shared machine) and, under
``valgrind --tool=cachegrind``, the instruction count of two runs of
different lengths gives instructions per post, which the noise does not
move (``--cachegrind`` does that and prints the difference)::

    python -m bench.post_cost --cachegrind            # metrics on and off
    python -m bench.post_cost --cachegrind --api v2   # the same posts over v2
    python -m bench.post_cost --cachegrind --auth token  # with X-Auth-Token checked
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

#: The token of ``--auth token`` (project "p", as v2's posts name it).
TOKEN = b"bench-post-cost-token"
#: Posts a batch: one reactor turn's worth at 16 connections.
BATCH = 16
#: The request line, project header and body of a POST of one message, per API.
POSTS = {
    "v1": (b"/v1/queues/q/messages", None, b'[{"ttl": 300, "body": {"event": "x"}}]'),
    "v2": (b"/v2/queues/q/messages", b"p",
           b'{"messages": [{"ttl": 300, "body": {"event": "x"}}]}'),
}


def serve(path, overrides=(), project=None, connections=BATCH):
    """
    The daemon's Site over a sqlite file at ``path`` (group commit, as the
    daemon runs), with queue "q" of ``project`` made, and ``connections``
    open connections on in-memory transports.

    @return: (driver, channels: [(channel, transport)], flush: runs the
        turn's group commit as the reactor would)
    """
    from twisted.internet import reactor
    from twisted.internet.testing import StringTransport

    from marconi_tx import config
    from marconi_tx.metrics import daemon_metrics
    from marconi_tx.storage.sqlite.driver import SqliteDriver
    from marconi_tx.transport.http.app import build_resource
    from marconi_tx.transport.http.site import make_site

    cfg = config.load(overrides=list(overrides))
    driver = SqliteDriver(path, reactor, group_commit=True)
    driver.open_now()
    driver.queues.create(project, "q")

    def flush():
        if driver._turn is not None:
            driver._turn.cancel()
        driver._flush()

    flush()
    metrics = daemon_metrics(cfg, reactor)
    served = driver if metrics is None else metrics.watch_storage(driver)
    if metrics is not None:  # the depth tracking listens to posts
        metrics.depths.startService()
    if cfg.notification.delivery:  # as the daemon: the deliverer hears every post
        from marconi_tx.notification.notifier import Notifier

        Notifier(driver, cfg, reactor).startService()
    site = make_site(build_resource(served, cfg, metrics), 1 << 20)
    site.timeOut = None
    channels = []
    for _ in range(connections):
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channels.append((channel, transport))
    return driver, channels, flush


def build(path, metrics, api="v1", auth="none"):
    overrides = [("drivers", "metrics", "true" if metrics else "false")]
    target, project, body = POSTS[api]
    if auth == "token":
        from marconi_tx.auth.tokens import token_hash

        token_file = path + ".tokens"
        with open(token_file, "w") as f:
            f.write(f"sha256:{token_hash(TOKEN.decode())} p\n")
        overrides += [("auth", "strategy", "token"), ("auth", "token_file", token_file)]
        project = project or b"p"  # the token's
    driver, channels, flush = serve(path, overrides, project and project.decode())
    raw = (b"POST %s HTTP/1.1\r\nHost: localhost\r\n" % target
           + (b"" if project is None or auth == "token" and api == "v1"
              else b"X-Project-ID: %s\r\n" % project)
           + (b"X-Auth-Token: %s\r\n" % TOKEN if auth == "token" else b"")
           + b"Client-ID: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body

    def batch():
        for channel, _ in channels:
            channel.dataReceived(raw)
        flush()
        for _, transport in channels:
            answer = transport.value()
            if not answer.startswith(b"HTTP/1.1 201 "):
                raise RuntimeError(answer[:200])
            transport.clear()

    return driver, batch


def run(metrics, batches, api="v1", auth="none"):
    with tempfile.TemporaryDirectory() as folder:
        driver, batch = build(os.path.join(folder, "cost.db"), metrics, api, auth)
        for _ in range(20):  # warm: caches, the match cache, first labels
            batch()
        started = time.perf_counter()
        for _ in range(batches):
            batch()
        elapsed = time.perf_counter() - started
        driver.close()
    return elapsed / (batches * BATCH) * 1e6


def cachegrind(module, *args):
    """Instructions of a whole run of ``python -m module *args`` under
    cachegrind."""
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no",
             f"--cachegrind-out-file={folder}/cg.out", sys.executable, "-m", module, *args],
            capture_output=True, text=True, check=True)
    match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    return int(match.group(1).replace(",", ""))


def instructions(metrics, batches, api="v1", auth="none"):
    """Instructions of a whole run under cachegrind."""
    return cachegrind("bench.post_cost", "--metrics", "on" if metrics else "off",
                      "--batches", str(batches), "--api", api, "--auth", auth)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.post_cost",
                                description=__doc__.split("\n")[0])
    p.add_argument("--metrics", choices=("on", "off"), default="on")
    p.add_argument("--batches", type=int, default=500)
    p.add_argument("--api", choices=sorted(POSTS), default="v1",
                   help="the API version posting (v2: with the queue's policy read)")
    p.add_argument("--auth", choices=("none", "token"), default="none",
                   help="token: the [auth] token strategy checks an X-Auth-Token")
    p.add_argument("--cachegrind", action="store_true",
                   help="instructions per post, metrics on and off (about a minute)")
    args = p.parse_args(argv)
    if not args.cachegrind:
        cost = run(args.metrics == "on", args.batches, args.api, args.auth)
        print(f"{args.api}, auth {args.auth}, metrics {args.metrics}: {cost:.1f} µs a post")
        return
    short, long = 10, 10 + args.batches
    for metrics in (False, True):
        per_post = ((instructions(metrics, long, args.api, args.auth)
                     - instructions(metrics, short, args.api, args.auth))
                    / ((long - short) * BATCH))
        print(f"{args.api}, auth {args.auth}, metrics {'on' if metrics else 'off'}: "
              f"{per_post / 1000:.1f} thousand instructions a post")


if __name__ == "__main__":
    main()
