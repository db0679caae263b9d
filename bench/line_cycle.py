"""The line endpoint against beanstalkd: put/reserve/delete cycles.

Each connection runs ``put``, ``reserve``, ``delete`` in a loop, against
beanstalkd and against marconi_tx's line endpoint (``twistd marconi --line``,
a sqlite file at the default settings: WAL, ``synchronous=NORMAL``, group
commit), in the same run and in turns, so that all see the same machine
noise:

* one connection: the greenstalk client (blocking), a cycle's latency the
  time of its three round trips;
* ``connections`` at once (16 by default): an asyncio load generator in this
  process speaking the protocol, each connection in its own cycle loop (a
  Python client; at this concurrency it can be what limits beanstalkd).

Targets: ``line-ceiling`` (``bench.line_ceiling``: a bare Twisted protocol
writing fixed replies, storing nothing: the floor of any Twisted line
server), ``beanstalkd`` (in memory, no binlog: nothing survives a restart),
``beanstalkd-binlog`` (``-b DIR``, its default fsync at most every 50 ms: a
job is written to the binlog before it is answered, so it survives a
``kill -9``; the last 50 ms may be lost to a power failure) and
``marconi_tx`` (a put is answered after its COMMIT: it survives a ``kill
-9``; with ``synchronous=FULL`` also a power failure).

    python -m bench.line_cycle [--cycles 5000] [--repeats 3] [--connections 16]

``run()`` returns rows for ``bench.report``: ``{"section": "line", "target",
"connections", "cycles_per_s", "p50_ms", "p99_ms", "server_cpu_us",
"repeat"}`` (``server_cpu_us``: the server's CPU time a cycle).
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time

import greenstalk

from bench import servers

#: The tube every server is loaded on.
TUBE = "bench-line"
#: The job put by every cycle.
BODY = b"job"
#: Unmeasured cycles before each measurement: on one connection, and on
#: each of more.
WARMUP = 200
WARMUP_EACH = 50


def _summary(count, elapsed, took):
    took.sort()
    return {
        "cycles_per_s": count / elapsed,
        "p50_ms": 1000 * statistics.median(took),
        "p99_ms": 1000 * took[min(len(took) - 1, int(len(took) * 0.99))],
    }


def cycles(address, count, warmup=WARMUP):
    """Run ``count`` put/reserve/delete cycles on one greenstalk connection
    to ``address`` after ``warmup`` unmeasured ones; rate and latencies."""
    with greenstalk.Client(address, use=TUBE, watch=TUBE) as client:
        for _ in range(warmup):
            client.put(BODY)
            client.delete(client.reserve(10))
        took = []
        started = time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter()
            client.put(BODY)
            client.delete(client.reserve(10))
            took.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    return _summary(count, elapsed, took)


class ProtocolError(Exception):
    """A server answered something a cycle does not expect."""


async def _expect(reader, prefix):
    line = await reader.readline()
    if not line.startswith(prefix):
        raise ProtocolError(f"expected {prefix!r}, got {line[:100]!r}")
    return line


class _Start:
    """The measurement starts once every connection has warmed up."""

    def __init__(self, connections):
        self.waiting = connections
        self.warmed = asyncio.Event()
        self.go = asyncio.Event()

    async def ready(self):
        self.waiting -= 1
        if not self.waiting:
            self.warmed.set()
        await self.go.wait()


async def _connection(address, count, warmup, start, took):
    reader, writer = await asyncio.open_connection(*address)
    try:
        tube = TUBE.encode()
        writer.write(b"use %s\r\nwatch %s\r\nignore default\r\n" % (tube, tube))
        for prefix in (b"USING", b"WATCHING", b"WATCHING"):
            await _expect(reader, prefix)
        put = b"put 1024 0 60 %d\r\n%s\r\n" % (len(BODY), BODY)
        for n in range(warmup + count):
            if n == warmup:
                await start.ready()
            t0 = time.perf_counter()
            writer.write(put)
            await _expect(reader, b"INSERTED ")
            writer.write(b"reserve-with-timeout 10\r\n")
            _, job_id, size = (await _expect(reader, b"RESERVED ")).split()
            await reader.readexactly(int(size) + 2)
            writer.write(b"delete %s\r\n" % job_id)
            await _expect(reader, b"DELETED")
            if n >= warmup:
                took.append(time.perf_counter() - t0)
    finally:
        writer.close()


async def _concurrent(address, connections, count, warmup):
    start = _Start(connections)
    took = []
    each = max(1, count // connections)
    tasks = [asyncio.ensure_future(_connection(address, each, warmup, start, took))
             for _ in range(connections)]
    warmed = asyncio.ensure_future(start.warmed.wait())
    # A connection failing while warming up ends the wait too (and raises).
    await asyncio.wait([warmed, *tasks], return_when=asyncio.FIRST_COMPLETED)
    warmed.cancel()
    t0 = time.perf_counter()
    start.go.set()
    await asyncio.gather(*tasks)
    return _summary(each * connections, time.perf_counter() - t0, took)


def concurrent_cycles(address, connections, count, warmup=WARMUP_EACH):
    """``count`` cycles in all over ``connections`` connections at once
    (asyncio, in this process), after ``warmup`` unmeasured cycles on each;
    rate and latencies."""
    return asyncio.run(_concurrent(address, connections, count, warmup))


def start_beanstalkd(workdir, binlog=False):
    """beanstalkd on a free loopback port (in memory, or with a binlog in
    a fresh folder and its default fsync policy), or None when it is not
    installed."""
    binary = shutil.which("beanstalkd")
    if binary is None:
        return None
    port = servers.free_port()
    name = "beanstalkd-binlog" if binlog else "beanstalkd"
    argv = [binary, "-l", servers.HOST, "-p", str(port)]
    if binlog:
        folder = tempfile.mkdtemp(prefix="binlog-", dir=workdir)
        argv += ["-b", folder]
    log = os.path.join(workdir, f"{name}.log")
    server = servers.Server(name, port)
    server.processes.append(servers.spawn(argv, log, workdir))
    server.logs.append(log)
    servers.wait_listening(server)
    return server


def measure(target, port, connections, count):
    """One measurement of ``count`` cycles on ``connections``, with the
    server's CPU time a cycle."""
    address = (servers.HOST, port)
    before = target.cpu_seconds()
    if connections == 1:
        result = cycles(address, count)
        warm = WARMUP
    else:
        result = concurrent_cycles(address, connections, count)
        warm = WARMUP_EACH * connections
    result["server_cpu_us"] = 1e6 * (target.cpu_seconds() - before) / (count + warm)
    return result


def run(workdir, count=5000, repeats=3, log=print, connections=(1, 16)):
    """Every target at every number of ``connections``, ``repeats`` times
    in turns; one row per measurement."""
    os.makedirs(workdir, exist_ok=True)
    targets = []
    rows = []
    try:
        for binlog in (False, True):
            beanstalkd = start_beanstalkd(workdir, binlog)
            if beanstalkd is None:
                log("line: beanstalkd is not installed; measuring marconi_tx only")
                break
            targets.append((beanstalkd.name, beanstalkd, beanstalkd.port))
        ceiling = servers.start_line_ceiling(workdir)
        targets.append((ceiling.name, ceiling, ceiling.port))
        db = os.path.join(workdir, "line.db")
        marconi = servers.start_marconi(workdir, db, line=True, name="marconi-line")
        targets.append(("marconi_tx", marconi, marconi.line_port))
        for repeat in range(repeats):
            for n in connections:
                for name, server, port in targets:
                    result = measure(server, port, n, count)
                    log(f"line: {name:<17} {n:3d} conn {result['cycles_per_s']:9.0f} cycles/s  "
                        f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  "
                        f"server {result['server_cpu_us']:.0f} us cpu a cycle")
                    rows.append(dict(result, section="line", target=name, connections=n,
                                     repeat=repeat))
    finally:
        for _, server, _ in targets:
            server.stop()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, action="append",
                        help="connections at once (repeatable; default 1 and 16)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="line-cycle-")
    rows = run(workdir, args.cycles, args.repeats, connections=args.connections or (1, 16))
    from bench import report

    for row in report.summarize(rows)["line"]:
        ratios = "  ".join(f"/ {k[len('ratio_to_'):]} = {v:.3f}" for k, v in row.items()
                           if k.startswith("ratio_to_") and v is not None)
        print(f"{row['target']:<17} {row['connections']:3d} conn: median "
              f"{row['cycles_per_s']:.0f} cycles/s  {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
