"""The ``pools`` section: queues spread over pools, and more than one process.

Each layout is one daemon with ``[drivers] pooling`` on (its catalog in a
sqlite file of its own) and its pools registered over the v2 admin API
(``PUT /v2/pools/{name}``), except the reference layout, ``file``: one
process on one sqlite file, no pooling (what a daemon is without this
section's mechanism). All daemons are up for the whole section; every repeat
loads each layout in turn with POST 1 and the consume cycle, spread over
``QUEUES`` queues (the Lua scripts' ``queues``: requests go to the queues in
turn, so to every pool), and each ratio is a layout's rate over the
reference's in the same repeat (``bench.comparisons.pool_ratios``).

sqlite layouts: 1 pool with 1 process, then 1, 2 and 4 pools (files) with
``--workers 2``. MongoDB layouts (when ``secantusd-py`` is installed): 1 and
2 pools with ``--workers 2``, each pool a MongoDB-wire server of its own;
they are compared with the 1 MongoDB pool layout (the test server is a
behaviour double, O(n) for sorted queries: its rates say nothing of MongoDB's).

Consume queues are stocked over HTTP before each consume load (posts of
``STOCK_BATCH``), with twice what the fastest consume load seen would take.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import time
from typing import NamedTuple

from bench import probe, servers, wrk

#: Queues each load spreads over (enough that weighted random placement
#: gives every pool a share).
QUEUES = 16
#: The loads run on every layout, as named in ``bench.run.SCENARIOS``.
LOADS = ("post1", "consume")
#: Messages per stocking post.
STOCK_BATCH = 10
#: The project of every queue (v2 loads).
PROJECT = "bench"
#: Weight of every pool: equal shares.
WEIGHT = 100
#: Messages stocked before each consume load on MongoDB-wire pools.
MONGO_STOCK = 2000
#: Seconds of unrecorded POST 1 load each daemon gets first.
WARM_UP = 1
#: The target name of the reference layout.
REFERENCE = "file"


class Layout(NamedTuple):
    """A daemon of the section: its pools (0: no pooling), its processes,
    and the engine of its pools."""

    name: str
    pools: int
    workers: int
    engine: str = "sqlite"


SQLITE_LAYOUTS = (
    Layout(REFERENCE, 0, 1),
    Layout("1 pool", 1, 1),
    Layout("1 pool w2", 1, 2),
    Layout("2 pools w2", 2, 2),
    Layout("4 pools w2", 4, 2),
)
MONGO_LAYOUTS = (
    Layout("1 mongo pool w2", 1, 2, "mongodb"),
    Layout("2 mongo pools w2", 2, 2, "mongodb"),
)
#: The reference of the MongoDB layouts' ratios.
MONGO_REFERENCE = MONGO_LAYOUTS[0].name


def queue_name(load, index):
    return f"bench-pools-{load}-{index}"


def _secantus():
    beside = os.path.join(os.path.dirname(sys.executable), "secantusd-py")
    return beside if os.access(beside, os.X_OK) else shutil.which("secantusd-py")


@contextlib.contextmanager
def mongo_servers(workdir, count):
    """``count`` MongoDB-wire servers (in memory), yielding their URIs
    (None when secantusd-py is not installed)."""
    program = _secantus()
    if program is None:
        yield None
        return
    processes, uris = [], []
    try:
        for index in range(count):
            port = servers.free_port()
            log = open(os.path.join(workdir, f"secantus-{index}.log"), "wb")
            processes.append(subprocess.Popen(
                [program, "--host", servers.HOST, "--port", str(port), "--storage-path",
                 ":memory:", "--standalone"], stdout=log, stderr=subprocess.STDOUT))
            log.close()
            uris.append(f"mongodb://{servers.HOST}:{port}/marconi_bench")
            _wait_port(port)
        yield uris
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_port(port, timeout=30.0):
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((servers.HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _config(workdir, layout):
    """The settings file of ``layout``'s daemon."""
    path = os.path.join(workdir, f"{layout.name.replace(' ', '-')}.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write("[drivers]\nadmin_mode = true\n"
                f"pooling = {'true' if layout.pools else 'false'}\n")
    return path


class Daemon:
    """A layout's running daemon and its queues."""

    def __init__(self, layout, server):
        self.layout = layout
        self.server = server

    def client(self):
        return probe.Client(servers.HOST, self.server.port)

    def register(self, uris):
        client = self.client()
        try:
            for index, uri in enumerate(uris):
                client.request("PUT", f"/v2/pools/pool{index}", {"uri": uri, "weight": WEIGHT},
                               expect=(201,), project=PROJECT)
            for load in LOADS:
                for index in range(QUEUES):
                    client.request("PUT", f"/v2/queues/{queue_name(load, index)}", {},
                                   expect=(201, 204), project=PROJECT)
        finally:
            client.close()

    def stock(self, count):
        """Post ``count`` messages, spread over the consume queues."""
        per_queue = -(-count // QUEUES)
        messages = [{"ttl": 3600, "body": {"event": "stock", "id": i}}
                    for i in range(STOCK_BATCH)]
        client = self.client()
        try:
            for index in range(QUEUES):
                path = f"/v2/queues/{queue_name('consume', index)}/messages"
                for _ in range(-(-per_queue // STOCK_BATCH)):
                    client.request("POST", path, {"messages": messages}, expect=(201,),
                                   project=PROJECT)
        finally:
            client.close()


def _start(bench, workdir, layout, uris):
    catalog = os.path.join(workdir, f"{layout.name.replace(' ', '-')}-catalog.db")
    server = servers.start_marconi(workdir, catalog, processes=layout.workers,
                                   name=f"marconi-{layout.name.replace(' ', '-')}",
                                   config=_config(workdir, layout))
    daemon = Daemon(layout, server)
    daemon.register(uris)
    return daemon


def _pool_uris(workdir, layout, mongo):
    if layout.engine == "mongodb":
        return [f"{uri}_{layout.pools}" for uri in mongo[:layout.pools]]
    stem = os.path.join(workdir, layout.name.replace(" ", "-"))
    return [f"sqlite:{stem}-pool{index}.db" for index in range(layout.pools)]


def _stock(bench, layout):
    """Messages to post before a consume load of ``layout``: twice what the
    fastest consume load seen would take (the test MongoDB-wire server, far
    slower, gets ``MONGO_STOCK``)."""
    if layout.engine == "mongodb":
        return MONGO_STOCK
    rate = max(bench.consume_rate, 5000.0) * layout.workers
    return int(rate * bench.settings.duration * 2)


def run(bench):
    """The section: every layout up, loaded in turns, ``repeats`` times."""
    s = bench.settings
    workdir = os.path.join(bench.workdir, "pools")
    os.makedirs(workdir, exist_ok=True)
    concurrency = s.scale_concurrency
    bench.log(f"pools: {QUEUES} queues over 1, 2 and 4 sqlite pools (--workers 2) and 2 "
              f"MongoDB-wire pools, against one process on one file; concurrency "
              f"{concurrency}")
    with contextlib.ExitStack() as stack:
        mongo = stack.enter_context(mongo_servers(workdir, 2))
        layouts = SQLITE_LAYOUTS + (MONGO_LAYOUTS if mongo else ())
        if not mongo:
            bench.note("pools: secantusd-py is not installed; MongoDB layouts skipped")
        daemons = []
        for layout in layouts:
            daemon = _start(bench, workdir, layout, _pool_uris(workdir, layout, mongo))
            stack.enter_context(daemon.server)
            daemons.append(daemon)
        for daemon in daemons:
            # Unrecorded: every process opens its pools (connections, indexes).
            lua, params = bench.params("post1", "v2")
            params.update(queue="bench-pools-post1", queues=QUEUES)
            wrk.run(daemon.server.url + "/", lua, params, concurrency, WARM_UP)
        for repeat in range(s.repeats):
            for daemon in daemons:
                for load in LOADS:
                    lua, params = bench.params(load, "v2")
                    params.update(queue=f"bench-pools-{load}", queues=QUEUES)
                    if lua == "consume":
                        daemon.stock(_stock(bench, daemon.layout))
                    bench.load("pools", daemon.server, daemon.layout.name, load, concurrency,
                               api="v2", script=(lua, params), repeat=repeat,
                               pools=daemon.layout.pools, engine=daemon.layout.engine)
