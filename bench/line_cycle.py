"""The line endpoint against beanstalkd: put/reserve/delete cycles.

One greenstalk client (blocking, one connection) runs ``put``, ``reserve``,
``delete`` in a loop against a real beanstalkd and against marconi_tx's line
endpoint (``twistd marconi --line``, sqlite file), in the same run and in
turns, so both see the same machine noise. A cycle's latency is the time of
its three round trips.

    python -m bench.line_cycle [--cycles 5000] [--repeats 3] [--workdir DIR]

``run()`` returns rows for ``bench.report``: ``{"section": "line", "target",
"cycles_per_s", "p50_ms", "p99_ms", "repeat"}``.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import greenstalk

from bench import servers

#: The tube both servers are loaded on.
TUBE = "bench-line"


def cycles(address, count, warmup=200):
    """Run ``count`` put/reserve/delete cycles on one connection to
    ``address`` after ``warmup`` unmeasured ones; rate and latencies."""
    with greenstalk.Client(address, use=TUBE, watch=TUBE) as client:
        for _ in range(warmup):
            client.put("warm-up")
            client.delete(client.reserve(10))
        took = []
        started = time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter()
            client.put("job")
            client.delete(client.reserve(10))
            took.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    took.sort()
    return {
        "cycles_per_s": count / elapsed,
        "p50_ms": 1000 * statistics.median(took),
        "p99_ms": 1000 * took[min(len(took) - 1, int(len(took) * 0.99))],
    }


def start_beanstalkd(workdir):
    """beanstalkd (in memory, no binlog) on a free loopback port, or None
    when it is not installed."""
    binary = shutil.which("beanstalkd")
    if binary is None:
        return None
    port = servers.free_port()
    log = os.path.join(workdir, "beanstalkd.log")
    server = servers.Server("beanstalkd", port)
    server.processes.append(servers.spawn([binary, "-l", servers.HOST, "-p", str(port)],
                                           log, workdir))
    server.logs.append(log)
    servers.wait_listening(server)
    return server


def run(workdir, count=5000, repeats=3, log=print):
    """Both targets, ``repeats`` times in turns; one row per measurement."""
    os.makedirs(workdir, exist_ok=True)
    targets = []
    rows = []
    try:
        beanstalkd = start_beanstalkd(workdir)
        if beanstalkd is None:
            log("line: beanstalkd is not installed; measuring marconi_tx only")
        else:
            targets.append(("beanstalkd", beanstalkd, beanstalkd.port))
        db = os.path.join(workdir, "line.db")
        marconi = servers.start_marconi(workdir, db, line=True, name="marconi-line")
        targets.append(("marconi_tx", marconi, marconi.line_port))
        for repeat in range(repeats):
            for name, _, port in targets:
                result = cycles((servers.HOST, port), count)
                log(f"line: {name:<10} {result['cycles_per_s']:9.0f} cycles/s  "
                    f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms")
                rows.append(dict(result, section="line", target=name, repeat=repeat))
    finally:
        for _, server, _ in targets:
            server.stop()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="line-cycle-")
    rows = run(workdir, args.cycles, args.repeats)
    by_target = {}
    for row in rows:
        by_target.setdefault(row["target"], []).append(row["cycles_per_s"])
    medians = {target: statistics.median(rates) for target, rates in by_target.items()}
    for target, rate in medians.items():
        print(f"{target}: median {rate:.0f} cycles/s over {len(by_target[target])} runs")
    if "beanstalkd" in medians:
        print(f"marconi_tx / beanstalkd = {medians['marconi_tx'] / medians['beanstalkd']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
