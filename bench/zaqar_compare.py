"""The ``zaqar`` section: marconi_tx against upstream Zaqar, in the same run.

A marconi_tx daemon (on a fresh sqlite file) and Zaqar (``bench.zaqar``: on
redis, under gunicorn) are up for the whole section. Every repeat loads, at
each concurrency of ``zaqar_concurrency`` and over each API version both
serve, the throughput section's loads (``LOADS``: POST 1, POST 10, the
consume cycle, a page of 10; the same Lua scripts) on marconi_tx and then on
Zaqar, so that each ratio (``bench.comparisons.zaqar_ratios``) compares
numbers taken seconds apart. Zaqar 23 serves only v2 (``bench.zaqar``); the
section asks it for v1, then v1.1, and uses the first it serves besides v2.

Both consume queues are stocked before each consume load so that it cannot
drain them: marconi_tx's by writing its sqlite file (``bench.prefill``),
Zaqar's over HTTP (posts of ``STOCK_BATCH`` messages), each with twice what
the fastest consume load seen so far would take.
"""

import os

from bench import prefill, probe, servers, zaqar

#: The loads compared, as named in ``bench.run.SCENARIOS``.
LOADS = ("post1", "post10", "consume", "list")
#: The versions tried besides v2, in order; the first Zaqar serves is used.
OLD_APIS = ("v1", "v1.1")
#: Messages per stocking post (Zaqar's default ``max_messages_per_page``).
STOCK_BATCH = 20
#: Seconds a stocked message lives (the section lasts minutes).
STOCK_TTL = 3600


class ZaqarStock:
    """Zaqar's queues, created and kept deep enough over HTTP (a connection
    per call: gunicorn closes one idle for 2 seconds)."""

    def __init__(self, server):
        self.port = server.port
        #: (api, queue) -> messages posted and not yet consumed (at least).
        self.depth = {}
        #: Highest consume rate seen on Zaqar (messages/s).
        self.rate = 0.0

    def _requests(self, method, path, bodies, expect, project):
        client = probe.Client(servers.HOST, self.port)
        try:
            for body in bodies:
                client.request(method, path, body, expect=expect, project=project)
        finally:
            client.close()

    def create(self, api, queue, project):
        self._requests("PUT", f"/{api}/queues/{queue}", [{}], (201, 204), project)

    def fill(self, api, queue, project, count):
        messages = [{"ttl": STOCK_TTL, "body": {"event": "stock", "id": i}}
                    for i in range(STOCK_BATCH)]
        body = messages if api == "v1" else {"messages": messages}
        posts = -(-count // STOCK_BATCH)
        self._requests("POST", f"/{api}/queues/{queue}/messages", [body] * posts, (201,),
                       project)
        self.depth[(api, queue)] = self.depth.get((api, queue), 0) + posts * STOCK_BATCH

    def top_up(self, api, queue, project, seconds):
        needed = int(max(self.rate, 2000.0) * seconds * 2) + 1000
        missing = needed - self.depth.get((api, queue), 0)
        if missing > 0:
            self.fill(api, queue, project, missing)

    def consumed(self, api, queue, record):
        result = record["result"]
        self.rate = max(self.rate, result["messages_per_s"])
        self.depth[(api, queue)] -= result["messages"]


def _apis(bench, upstream):
    old = zaqar.served_apis(upstream, OLD_APIS)[:1]
    if not old:
        bench.note(f"zaqar: Zaqar {zaqar.VERSION} serves neither v1 nor v1.1 (404); "
                   f"compared over v2 only")
    return [*old, "v2"]


def _prepare(bench, marconi, db, stock, apis):
    """Create both servers' queues; fill both listing queues."""
    from bench.run import LIST_DEPTH

    client = probe.Client(servers.HOST, marconi.port)
    try:
        for api in apis:
            for name in LOADS:
                load = bench.scenario(name, api)
                client.request("PUT", f"/{api}/queues/{load.queue}", None,
                               expect=(201, 204), project=load.project)
                stock.create(api, load.queue, load.project)
            listing = bench.scenario("list", api)
            prefill.fill(db, listing.queue, LIST_DEPTH, listing.project)
            stock.fill(api, listing.queue, listing.project, LIST_DEPTH)
    finally:
        client.close()


def run(bench):
    """The section, run by ``bench.run.Bench.zaqar``."""
    s = bench.settings
    try:
        zaqar.ensure(bench.log, bench.install)
    except (zaqar.ZaqarMissing, OSError) as e:
        bench.note(f"zaqar: {e}; section skipped")
        return
    workdir = os.path.join(bench.workdir, "zaqar")
    os.makedirs(workdir, exist_ok=True)
    db = bench.fresh_db("zaqar-marconi.db")
    try:
        started = zaqar.start(workdir)
    except servers.ServerError as e:
        bench.note(f"zaqar: Zaqar did not start; section skipped: {e}")
        return
    with started as upstream, \
            servers.start_marconi(workdir, db, name="marconi-zaqar") as marconi:
        apis = _apis(bench, upstream)
        bench.meta["zaqar"] = {"version": zaqar.VERSION, "runner": zaqar.RUNNER,
                               "gunicorn": zaqar.gunicorn_version(), "apis": apis}
        bench.log(f"zaqar: marconi_tx and Zaqar {zaqar.VERSION} ({zaqar.RUNNER}, redis), "
                  f"{', '.join(LOADS)} over {', '.join(apis)}, {s.repeats} x "
                  f"{s.duration:.0f} s each")
        stock = ZaqarStock(upstream)
        _prepare(bench, marconi, db, stock, apis)
        for repeat in range(s.repeats):
            for concurrency in s.zaqar_concurrency:
                for api in apis:
                    for name in LOADS:
                        _pair(bench, marconi, upstream, stock, db, name, api, concurrency,
                              repeat)


def _pair(bench, marconi, upstream, stock, db, name, api, concurrency, repeat):
    """One load on marconi_tx, then on Zaqar."""
    load = bench.scenario(name, api)
    bench.load("zaqar", marconi, "marconi", name, concurrency, db_path=db, api=api,
               repeat=repeat)
    if load.lua == "consume":
        stock.top_up(api, load.queue, load.project, bench.settings.duration)
    record = bench.load("zaqar", upstream, "zaqar", name, concurrency, api=api,
                        repeat=repeat)
    if load.lua == "consume":
        stock.consumed(api, load.queue, record)
