"""Long-poll claims (``POST .../claims?wait=N``): wake-up latency and memory.

``wakeup`` (the ``long_poll`` section of ``make bench``): with W claims
waiting on an empty queue (one connection each, ``limit=1``), one message is
posted on another connection; a sample is the time from sending the post
(and from receiving its 201) to the first waiting claim's 201. The served
connection then waits again, so W claims wait at every sample. Rows:
``{"section": "long_poll", "waiters", "samples", "p50_ms", "p99_ms",
"after_answer_p50_ms", "after_answer_p99_ms"}``.

``memory``: opens N waiting claims (N connections, default 5,000) against a
daemon and reports the daemon's resident memory before and after, and per
waiting claim. The client process needs N descriptors, as does the daemon
(``[drivers] http_max_connections`` is set above N here).

    python -m bench.long_poll wakeup [--waiters 1,100] [--samples 200]
    python -m bench.long_poll memory [--waiters 5000]
"""

import argparse
import json
import os
import select
import selectors
import socket
import statistics
import sys
import tempfile
import time

from bench import probe, servers

QUEUE = "bench-long-poll"
PROJECT = "bench"
#: The wait of every claim, seconds (the daemon's max_claim_wait is set to it).
WAIT = 60
_HEADERS = (f"Host: x\r\nClient-ID: {probe.CLIENT_ID}\r\nX-Project-ID: {PROJECT}\r\n"
            "Content-Type: application/json\r\n")


def _request(method, path, body=b""):
    return (f"{method} {path} HTTP/1.1\r\n{_HEADERS}Content-Length: {len(body)}\r\n\r\n"
            .encode() + body)


CLAIM = _request("POST", f"/v2/queues/{QUEUE}/claims?limit=1&wait={WAIT}",
                 b'{"ttl": 60, "grace": 60}')
POST = _request("POST", f"/v2/queues/{QUEUE}/messages", b'{"messages": [{"body": 1}]}')
CREATE = _request("PUT", f"/v2/queues/{QUEUE}")


def _wait_readable(sock, timeout=1.0):
    poll = select.poll()  # select() refuses descriptors above 1023
    poll.register(sock, select.POLLIN)
    poll.poll(timeout * 1000)


class Connection:
    """One keep-alive HTTP connection, read without blocking."""

    def __init__(self, port):
        self.sock = socket.create_connection((servers.HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, data):
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def answers(self):
        """The statuses of the whole answers read so far (consumed)."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            data = b""
        self.buffer += data
        statuses = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return statuses
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return statuses
            self.buffer = self.buffer[end + 4 + length:]
            statuses.append(int(head[0].split()[1]))

    def call(self, data):
        """Send a request and wait for its status (blocking)."""
        self.send(data)
        while True:
            statuses = self.answers()
            if statuses:
                return statuses[0]
            _wait_readable(self.sock)


def _percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _fresh(path):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    return path


def _config(workdir, connections):
    path = os.path.join(workdir, "long-poll.conf")
    with open(path, "w") as f:
        f.write(f"[limits:transport]\nmax_claim_wait = {WAIT}\n"
                f"[drivers]\nhttp_max_connections = {connections + 100}\n")
    return path


def _connect(port, count, batch=50):
    """``count`` connections, made in batches that the daemon has accepted
    before the next starts (a full listen backlog delays connects by
    seconds of SYN retries)."""
    conns = []
    while len(conns) < count:
        conns += [Connection(port) for _ in range(min(batch, count - len(conns)))]
        ping = Connection(port)
        ping.call(_request("GET", "/v2/ping"))
        ping.sock.close()
    return conns


def _open_waiters(port, count):
    """``count`` connections, each with a claim waiting."""
    waiters = _connect(port, count)
    for conn in waiters:
        conn.send(CLAIM)
    # The queue is empty: the claims wait. A moment lets the daemon read
    # them all (a claim still arriving would only take a sample's message
    # a little later).
    time.sleep(0.5)
    return waiters


def wakeup_samples(port, waiters, samples):
    """Latencies (s) from sending a post, and from its answer, to a waiting
    claim's 201."""
    poster = Connection(port)
    poster.call(CREATE)
    conns = _open_waiters(port, waiters)
    selector = selectors.DefaultSelector()
    for conn in conns:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    from_send, from_answer = [], []
    for _ in range(samples):
        sent = time.perf_counter()
        poster.send(POST)
        answered = woken = None
        while woken is None or answered is None:
            if answered is None and poster.answers():
                answered = time.perf_counter()
            for key, _ in selector.select(timeout=0.0005):
                conn = key.data
                statuses = conn.answers()
                if 201 in statuses:
                    woken = time.perf_counter()
                    conn.send(CLAIM)  # waits again
                elif statuses:
                    raise RuntimeError(f"a waiting claim was answered {statuses}")
        from_send.append(woken - sent)
        from_answer.append(woken - answered)
    for conn in conns + [poster]:
        conn.sock.close()
    return from_send, from_answer


def wakeup(workdir, waiters=(1, 100), samples=200, log=print):
    """Rows of the ``long_poll`` section: one daemon (sqlite file) per run."""
    rows = []
    for count in waiters:
        db = _fresh(os.path.join(workdir, f"long-poll-{count}.db"))
        with servers.start_marconi(workdir, db, name=f"marconi-long-poll-{count}",
                                   config=_config(workdir, count)) as server:
            from_send, from_answer = wakeup_samples(server.port, count, samples)
        ms = [1000 * s for s in from_send]
        after = [1000 * s for s in from_answer]
        row = {"section": "long_poll", "waiters": count, "samples": samples,
               "p50_ms": statistics.median(ms), "p99_ms": _percentile(ms, 0.99),
               "after_answer_p50_ms": statistics.median(after),
               "after_answer_p99_ms": _percentile(after, 0.99)}
        rows.append(row)
        log(f"  long_poll  {count:5d} waiting: post sent -> claim 201 p50 "
            f"{row['p50_ms']:.2f} ms p99 {row['p99_ms']:.2f} ms; post's 201 -> claim 201 "
            f"p50 {row['after_answer_p50_ms']:.2f} ms p99 {row['after_answer_p99_ms']:.2f} ms")
    return rows


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def memory(workdir, waiters=5000, log=print):
    """The daemon's resident memory with ``waiters`` idle connections, then
    with a claim waiting on each."""
    db = _fresh(os.path.join(workdir, "long-poll-memory.db"))
    with servers.start_marconi(workdir, db, name="marconi-long-poll-memory",
                               config=_config(workdir, waiters)) as server:
        pid = server.pids()[0]
        poster = Connection(server.port)
        poster.call(CREATE)
        for _ in range(3):  # warm: code paths and caches a waiting claim touches
            warm = Connection(server.port)
            warm.send(CLAIM)
            poster.call(POST)
            while not warm.answers():
                _wait_readable(warm.sock)
            warm.sock.close()
        time.sleep(0.5)
        before = _rss_kib(pid)
        conns = _connect(server.port, waiters)
        time.sleep(1.0)
        idle = _rss_kib(pid)
        for conn in conns:
            conn.send(CLAIM)
        time.sleep(2.0)
        after = _rss_kib(pid)
        early = [status for c in conns for status in c.answers()]
        for conn in conns + [poster]:
            conn.sock.close()
    row = {"section": "long_poll_memory", "waiters": waiters, "rss_before_kib": before,
           "rss_idle_connections_kib": idle, "rss_after_kib": after,
           "per_connection_bytes": round((idle - before) * 1024 / waiters),
           "per_waiter_bytes": round((after - idle) * 1024 / waiters),
           "answered_early": early}
    log(f"  daemon RSS {before / 1024:.1f} MiB; with {waiters} idle connections "
        f"{idle / 1024:.1f} MiB ({row['per_connection_bytes']} bytes each); with a claim "
        f"waiting on each {after / 1024:.1f} MiB ({row['per_waiter_bytes']} bytes more "
        f"each); answered before the end: {early}")
    return row


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.long_poll", description=__doc__)
    p.add_argument("what", choices=("wakeup", "memory"))
    p.add_argument("--waiters", default=None, help="wakeup: 1,100; memory: 5000")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--workdir")
    args = p.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench-long-poll-")
    os.makedirs(workdir, exist_ok=True)
    if args.what == "wakeup":
        waiters = tuple(int(w) for w in (args.waiters or "1,100").split(","))
        result = wakeup(workdir, waiters, args.samples)
    else:
        result = memory(workdir, int(args.waiters or 5000))
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
