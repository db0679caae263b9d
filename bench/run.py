"""The benchmark plan: what is loaded, in which order, with which sizes.

Sections (each can be left out with ``--sections``):

``throughput``
    The ceilings (bare twisted.web, ``bench.ceiling``; a raw Protocol,
    ``bench.raw_ceiling``) and one marconi_tx daemon on a fresh sqlite file,
    all up for the whole section; every repeat loads the ceilings and then
    each marconi_tx scenario at each concurrency, so that all see the same
    noise, and each ratio is the median of the repeats' ratios, each
    comparing numbers taken within a minute. POST 1 and the consume cycle
    run over v1 and over v2 (``post1-v2``, ``consume-v2``: a project, the
    ``{"messages": [...]}`` bodies), and POST 1 with the token strategy on
    (``post1-token``, on a second daemon with ``[auth] strategy = token``);
    the report compares each v2 load with its v1 load and ``post1-token``
    with ``post1`` (``report.V2_OF_V1``).
``depth``
    For each depth, a sqlite file prefilled directly (``bench.prefill``,
    timed), a daemon on it, and sequential claim and list latencies; then
    claims behind ``live_claims`` live claims at the head against an empty
    head (``bench.soak.claim_head``).
``scale``
    One daemon and N daemons (N = cores by default) sharing one port and one
    sqlite file, and the ceiling with 1 and N processes, loaded in turns.
``pools``
    Queues spread over 1, 2 and 4 sqlite pools with ``--workers 2``, and
    over 2 MongoDB-wire pools, against one process on one file: POST 1 and
    the consume cycle on each layout in turns (``bench.pools``).
``soak``
    POST 1 and the consume cycle on one queue at once for ``soak_seconds``,
    sampling the sqlite WAL file's size every second (``bench.soak``), with
    the WAL bound, then without it (at most a minute).
``metrics``
    POST 1 message on a daemon with metrics (``/metrics`` scraped every
    second meanwhile) and on one with ``[drivers] metrics = false``, loaded
    in turns; the ratio of their rates is the cost of metrics.
``line``
    The put/reserve/delete cycle of the line endpoint against beanstalkd, in
    memory and with its binlog, on 1 connection (greenstalk) and on 16 (an
    asyncio client), in turns (``bench.line_cycle``, when that module and
    beanstalkd are present).
``zaqar``
    marconi_tx against upstream Zaqar (on redis, under gunicorn), the same
    wrk loads on both in turns, over each API version both serve
    (``bench.zaqar_compare``); Zaqar is installed on first use
    (``bench.zaqar``), and the section is skipped with a note when it or
    redis-server cannot be (or ``--no-install`` forbids installing them).
``profile`` (only when asked for)
    One daemon sampled by py-spy under each profiled load (``bench.profile``).
"""

import contextlib
import importlib
import os
import platform
import shutil
import subprocess
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import NamedTuple

from bench import pools as pool_layouts
from bench import prefill, probe, profile, servers, soak, wrk, zaqar_compare

#: The project of the v2 loads' queues (v2 requires one; v1's are global).
PROJECT = "bench"


class Scenario(NamedTuple):
    """A load: its Lua scenario, the messages a request carries, its queue,
    the API version it speaks and its ``[auth] strategy`` ("": noauth; else
    it loads a second daemon with that strategy, its token ``TOKEN``)."""

    lua: str
    batch: int
    queue: str
    api: str = "v1"
    auth: str = ""

    @property
    def project(self):
        return None if self.api == "v1" else PROJECT


SCENARIOS = {
    "post1": Scenario("post", 1, "bench-post1"),
    "post10": Scenario("post", 10, "bench-post10"),
    "consume": Scenario("consume", 10, "bench-consume"),
    "list": Scenario("list", 10, "bench-list"),
    "post1-v2": Scenario("post", 1, "bench-post1", "v2"),
    "consume-v2": Scenario("consume", 10, "bench-consume", "v2"),
    "post1-token": Scenario("post", 1, "bench-post1", auth="token"),
}

#: The X-Auth-Token of the loads with ``auth`` (project ``PROJECT``).
TOKEN = "bench-token-not-secret"

#: The ceiling's reference load: every ratio divides by its rate.
CEILING = "get"
#: Loads also run against the ceilings, to show what twisted.web alone
#: costs, and what the reactor alone does.
CEILING_ALSO = ("post1",)
#: The ceilings of the throughput section, both loaded with ``CEILING`` and
#: ``CEILING_ALSO``: the bare twisted.web resource (``bench.ceiling``, the
#: reference of every "ratio") and the raw Protocol writing a fixed answer
#: (``bench.raw_ceiling``, the floor of any Twisted HTTP server).
CEILINGS = ("ceiling", "raw-ceiling")

SECTIONS = ("throughput", "depth", "scale", "pools", "soak", "metrics", "line", "long_poll",
            "zaqar", "profile")
#: What runs without --sections: profiling needs py-spy and slows the daemon.
DEFAULT_SECTIONS = SECTIONS[:-1]

#: Messages kept in the listing queue (its first page is what is read).
LIST_DEPTH = 1000


@dataclass(frozen=True)
class Settings:
    preset: str = "full"
    duration: float = 5.0
    repeats: int = 3
    concurrency: tuple = (1, 16, 64)
    scenarios: tuple = tuple(SCENARIOS)
    depths: tuple = (1000, 100000, 1000000)
    depth_samples: int = 300
    processes: int = os.cpu_count() or 2
    scale_concurrency: int = 64
    scale_scenarios: tuple = ("post1", "consume", "list")
    line_cycles: int = 5000
    #: Connections of the line section's loads (1: greenstalk; more: asyncio).
    line_connections: tuple = (1, 16)
    #: Claims waiting at once in each run of the long_poll section.
    long_poll_waiters: tuple = (1, 100)
    long_poll_samples: int = 200
    live_claims: int = 50000
    # 3 minutes (4 before post1-token joined the throughput loads).
    soak_seconds: int = 180
    soak_concurrency: int = 16
    #: Connections of the zaqar section's loads (marconi_tx against Zaqar).
    zaqar_concurrency: tuple = (16,)
    profile_scenarios: tuple = ("post1", "consume")
    profile_seconds: int = 10
    profile_concurrency: int = 16
    sections: tuple = DEFAULT_SECTIONS

    def check(self):
        """Raise ValueError for settings that cannot run."""
        if self.duration < 1 or int(self.duration) != self.duration:
            raise ValueError("duration must be a whole number of seconds, at least 1 (wrk)")
        if self.repeats < 1:
            raise ValueError("repeats must be at least 1")
        unknown = set(self.scenarios + self.scale_scenarios
                      + self.profile_scenarios) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenarios: {', '.join(sorted(unknown))}")
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown sections: {', '.join(sorted(unknown))}")
        if any(c < 1 for c in self.concurrency + self.zaqar_concurrency
                                  + self.line_connections) \
                or self.scale_concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.processes < 1:
            raise ValueError("processes must be at least 1")

    def estimate(self):
        """Seconds the wrk loads alone will take (start-ups and fills add to it)."""
        seconds = 0.0
        if "throughput" in self.sections:
            ceiling = len(CEILINGS) * (1 + len(set(CEILING_ALSO) & set(self.scenarios)))
            seconds += (self.repeats * len(self.concurrency)
                        * (ceiling + len(self.scenarios)) * self.duration)
        if "scale" in self.sections:
            counts = len({1, self.processes})
            seconds += self.repeats * counts * (1 + len(self.scale_scenarios)) * self.duration
        if "pools" in self.sections:
            layouts = len(pool_layouts.SQLITE_LAYOUTS) + len(pool_layouts.MONGO_LAYOUTS)
            seconds += self.repeats * layouts * len(pool_layouts.LOADS) * self.duration
        if "soak" in self.sections:
            seconds += sum(soak.seconds_of(m, self.soak_seconds) for m, _ in soak.WAL_SETTINGS)
        if "metrics" in self.sections:
            seconds += self.repeats * 2 * self.duration
        if "line" in self.sections:
            # marconi_tx does about a thousand cycles a second on one
            # connection and two on more, beanstalkd (twice: in memory, with
            # a binlog) about ten; a run warms up with 200 cycles on one
            # connection, 50 a connection on more (bench.line_cycle).
            for n in self.line_connections:
                cycles = self.line_cycles + (200 if n == 1 else 50 * n)
                rate = 1000 if n == 1 else 2000
                seconds += self.repeats * cycles * (1 / rate + 2 / 10000)
        if "zaqar" in self.sections:
            # Zaqar 23 serves one API version of marconi_tx's three (v2).
            seconds += (self.repeats * len(self.zaqar_concurrency)
                        * 2 * len(zaqar_compare.LOADS) * self.duration)
        if "profile" in self.sections:
            seconds += len(self.profile_scenarios) * self.profile_seconds
        return seconds


PRESETS = {
    # About 21 minutes on 2 cores (6 of them the WAL soak).
    "full": Settings(),
    # About 4 minutes: shorter and fewer runs, same shape.
    "quick": Settings(preset="quick", duration=2.0, repeats=2, depth_samples=100,
                      line_cycles=2000, profile_seconds=5, soak_seconds=12,
                      long_poll_samples=100),
    # Seconds: proves the harness works end to end, measures nothing.
    "smoke": Settings(preset="smoke", duration=1.0, repeats=1, concurrency=(2,),
                      depths=(100, 1000), depth_samples=5, processes=2,
                      scale_concurrency=4, scale_scenarios=("post1",), line_cycles=100,
                      line_connections=(1, 2),
                      long_poll_waiters=(1, 3), long_poll_samples=5,
                      live_claims=500, soak_seconds=3, soak_concurrency=2,
                      zaqar_concurrency=(2,), profile_seconds=2, profile_concurrency=2),
}


def say(text):
    print(text, flush=True)


class Bench:
    """One benchmark run: its settings, work folder and collected runs."""

    def __init__(self, settings, workdir, log=say, install=True):
        self.settings = settings
        self.workdir = workdir
        self.log = log
        #: Whether sections may install what they miss (Zaqar, redis-server).
        self.install = install
        self.runs = []
        self.notes = []
        #: What sections add to the result's metadata (the Zaqar they ran).
        self.meta = {}
        #: Highest consume rate seen per process (messages/s), to size stocks.
        self.consume_rate = 0.0

    # -- one measurement -------------------------------------------------

    @staticmethod
    def scenario(name, api=None):
        """The load ``name`` of ``SCENARIOS``, over ``api`` if given."""
        return SCENARIOS[name]._replace(api=api) if api else SCENARIOS[name]

    def params(self, scenario, api=None):
        load = self.scenario(scenario, api)
        return load.lua, {"queue": load.queue, "batch": load.batch,
                          "client_id": probe.CLIENT_ID, "api": load.api,
                          "project": load.project or "", "token": TOKEN if load.auth else ""}

    def stock(self, db_path, scenario, seconds=None, processes=1, api=None):
        """Top the queue of ``scenario`` (over ``api``) up so that a consume
        run cannot drain it (each process may consume as fast as the
        fastest run seen so far)."""
        load = self.scenario(scenario, api)
        rate = max(self.consume_rate, 20000.0) * processes
        needed = int(rate * (seconds or self.settings.duration) * 2) + 1000
        missing = needed - prefill.depth(db_path, load.queue, load.project)
        if missing > 0:
            prefill.fill(db_path, load.queue, missing, load.project)

    def load(self, section, server, target, scenario, concurrency, db_path=None, api=None,
             script=None, **labels):
        """One wrk run against ``server`` (``scenario`` over ``api`` if given:
        the record says so; with ``script``, the (lua, params) it runs);
        appends and returns the run record. A consume load on marconi_tx
        (``db_path``) is stocked first."""
        if script is not None:
            lua, params = script
        elif scenario == CEILING:
            lua, params = "get", {}
        else:
            lua, params = self.params(scenario, api)
            if lua == "consume" and db_path:
                self.stock(db_path, scenario, processes=server.count, api=api)
        if api:
            labels["api"] = api
        before = [servers.cpu_seconds(pid) for pid in server.pids()]
        # The scripts set their paths; the URL gives wrk the address.
        result = wrk.run(server.url + "/", lua, params, concurrency,
                         int(self.settings.duration))
        after = [servers.cpu_seconds(pid) for pid in server.pids()]
        if lua == "consume":
            self.consume_rate = max(self.consume_rate, result.mps / server.count)
        per_process = [round(b - a, 3) for a, b in zip(before, after)]
        record = {"section": section, "target": target, "scenario": scenario,
                  "concurrency": concurrency, "processes": server.count,
                  "result": result.as_dict(), "server_cpu_s": round(sum(per_process), 3),
                  "server_cpu_per_process_s": per_process, **labels}
        self.runs.append(record)
        flags = []
        if result.failures:
            flags.append(f"{result.failures} failed")
        if result.empty:
            flags.append(f"{result.empty} empty")
        self.log(f"  {section:10} {target:11} {scenario:8} c={concurrency:<3} "
                 f"p={server.count} {result.rps:9.0f} req/s "
                 f"{result.mps:9.0f} msg/s  p50 {result.latency_ms['p50']:.2f} ms "
                 f"p99 {result.latency_ms['p99']:.2f} ms {' '.join(flags)}")
        return record

    def prepare(self, server, db_path, scenarios, token=None):
        """Create the scenarios' queues over HTTP (with ``token``, in its
        project) and fill the listing queue."""
        client = probe.Client(servers.HOST, server.port, token=token)
        try:
            for scenario in scenarios:
                client.create_queue(SCENARIOS[scenario].queue,
                                    None if token else SCENARIOS[scenario].project)
        finally:
            client.close()
        if "list" in scenarios:
            prefill.fill(db_path, SCENARIOS["list"].queue, LIST_DEPTH)

    def fresh_db(self, name):
        path = os.path.join(self.workdir, name)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        return path

    # -- sections --------------------------------------------------------

    def throughput(self):
        s = self.settings
        self.log(f"throughput: ceiling and one daemon, {s.repeats} x {s.duration:.0f} s "
                 f"per configuration")
        db = self.fresh_db("throughput.db")
        plain = tuple(name for name in s.scenarios if not SCENARIOS[name].auth)
        with contextlib.ExitStack() as stack:
            ceilings = [stack.enter_context(servers.start_ceiling(self.workdir, name=name))
                        for name in CEILINGS]
            marconi = stack.enter_context(servers.start_marconi(self.workdir, db))
            self.prepare(marconi, db, plain)
            # The loads with auth go to a daemon of their own, reported as
            # "marconi" too: report.V2_OF_V1 compares them with their base
            # load repeat by repeat.
            daemons = dict.fromkeys(plain, marconi)
            for strategy in sorted({SCENARIOS[n].auth for n in s.scenarios} - {""}):
                names = [n for n in s.scenarios if SCENARIOS[n].auth == strategy]
                auth_db = self.fresh_db(f"throughput-{strategy}.db")
                daemon = stack.enter_context(servers.start_marconi(
                    self.workdir, auth_db, name=f"marconi-{strategy}",
                    config=self.auth_config(strategy)))
                self.prepare(daemon, auth_db, names, token=TOKEN)
                daemons.update(dict.fromkeys(names, daemon))
            for repeat in range(s.repeats):
                for concurrency in s.concurrency:
                    for ceiling in ceilings:
                        self.load("throughput", ceiling, ceiling.name, CEILING, concurrency,
                                  repeat=repeat)
                        for scenario in CEILING_ALSO:
                            if scenario in s.scenarios:
                                self.load("throughput", ceiling, ceiling.name, scenario,
                                          concurrency, repeat=repeat)
                    for scenario in s.scenarios:
                        self.load("throughput", daemons[scenario], "marconi", scenario,
                                  concurrency, db_path=db, repeat=repeat)

    def auth_config(self, strategy):
        """A settings file for a daemon with ``[auth] strategy`` (token:
        ``TOKEN`` for project ``PROJECT``)."""
        from marconi_tx.auth.tokens import token_hash

        tokens = os.path.join(self.workdir, "tokens")
        with open(tokens, "w") as f:
            f.write(f"sha256:{token_hash(TOKEN)} {PROJECT}\n")
        path = os.path.join(self.workdir, f"{strategy}.conf")
        with open(path, "w") as f:
            f.write(f"[auth]\nstrategy = {strategy}\ntoken_file = {tokens}\n")
        return path

    def depth(self):
        s = self.settings
        self.log(f"depth: {', '.join(map(str, s.depths))} messages, "
                 f"{s.depth_samples} sequential samples each")
        queue = "bench-depth"
        for depth in s.depths:
            db = self.fresh_db(f"depth-{depth}.db")
            seconds = prefill.fill(db, queue, depth)
            self.log(f"  prefilled {depth} messages in {seconds:.2f} s "
                     f"({depth / seconds:.0f} messages/s)")
            with servers.start_marconi(self.workdir, db, name=f"marconi-depth-{depth}") as server:
                client = probe.Client(servers.HOST, server.port)
                try:
                    # Warm the connection and the page cache before timing.
                    probe.depth_latency(client, queue, min(20, s.depth_samples))
                    numbers = probe.depth_latency(client, queue, s.depth_samples)
                finally:
                    client.close()
            self.runs.append({"section": "depth", "depth": depth,
                              "prefill_s": round(seconds, 3), **numbers})
            self.log(f"  depth {depth}: claim p50 {numbers['claim']['p50_ms']:.2f} ms, "
                     f"list p50 {numbers['list']['p50_ms']:.2f} ms")
            os.unlink(db)
        self.live_claims()

    def live_claims(self):
        """Claim latency behind ``live_claims`` live claims at the head, and
        with an empty head, on queues of the same number of free messages."""
        s = self.settings
        queue, free = "bench-head", 1000
        numbers = {}
        for live in (0, s.live_claims):
            db = self.fresh_db(f"head-{live}.db")
            prefill.fill(db, queue, live + free)
            soak.claim_head(db, queue, live)
            with servers.start_marconi(self.workdir, db, name=f"marconi-head-{live}") as server:
                client = probe.Client(servers.HOST, server.port)
                try:
                    probe.depth_latency(client, queue, min(20, s.depth_samples))
                    numbers[live] = probe.depth_latency(client, queue, s.depth_samples)
                finally:
                    client.close()
            os.unlink(db)
        empty, behind = numbers[0]["claim"]["p50_ms"], numbers[s.live_claims]["claim"]["p50_ms"]
        self.runs.append({"section": "live_claims",
                          "live_claims": s.live_claims, "empty_head": numbers[0],
                          "behind_live_claims": numbers[s.live_claims],
                          "ratio": round(behind / empty, 3) if empty else None})
        self.log(f"  claim behind {s.live_claims} live claims: p50 {behind:.2f} ms, "
                 f"empty head {empty:.2f} ms ({behind / empty:.2f}x)")

    def soak(self):
        s = self.settings
        self.log(f"soak: POST 1 and consume on one queue for {s.soak_seconds} s, "
                 f"concurrency {s.soak_concurrency} each, WAL sampled every second")
        lua, params = self.params("consume")
        for wal_max_bytes, label in soak.WAL_SETTINGS:
            db = self.fresh_db(f"soak-{label}.db")
            self.runs.append(soak.wal_soak(self.workdir, db, wal_max_bytes, label,
                                           soak.seconds_of(wal_max_bytes, s.soak_seconds),
                                           params, s.soak_concurrency, self.log))
            self.fresh_db(f"soak-{label}.db")

    def scale(self):
        s = self.settings
        counts = sorted({1, s.processes})
        self.log(f"scale: {' and '.join(map(str, counts))} processes on one port, "
                 f"concurrency {s.scale_concurrency}")
        groups = []
        try:
            for count in counts:
                db = self.fresh_db(f"scale-{count}.db")
                ceiling = servers.start_ceiling(os.path.join(self.workdir, f"scale-{count}"),
                                                processes=count)
                groups.append((count, ceiling, None, db))
                marconi = servers.start_marconi(os.path.join(self.workdir, f"scale-{count}"),
                                                db, processes=count)
                groups[-1] = (count, ceiling, marconi, db)
                self.prepare(marconi, db, s.scale_scenarios)
            for repeat in range(s.repeats):
                for _, ceiling, marconi, db in groups:
                    self.load("scale", ceiling, "ceiling", CEILING, s.scale_concurrency,
                              repeat=repeat)
                    for scenario in s.scale_scenarios:
                        self.load("scale", marconi, "marconi", scenario, s.scale_concurrency,
                                  db_path=db, repeat=repeat)
        finally:
            for _, ceiling, marconi, _ in groups:
                for server in (ceiling, marconi):
                    if server is not None:
                        server.stop()

    def metrics(self):
        s = self.settings
        concurrency = 16 if 16 in s.concurrency else s.concurrency[-1]
        self.log(f"metrics: POST 1 message, c={concurrency}, metrics on (scraped every "
                 f"second) and off, {s.repeats} x {s.duration:.0f} s each")
        off_config = os.path.join(self.workdir, "metrics-off.conf")
        with open(off_config, "w") as f:
            f.write("[drivers]\nmetrics = false\n")
        on_db, off_db = self.fresh_db("metrics-on.db"), self.fresh_db("metrics-off.db")
        with servers.start_marconi(self.workdir, on_db, name="marconi-metrics-on") as on, \
                servers.start_marconi(self.workdir, off_db, name="marconi-metrics-off",
                                      config=off_config) as off:
            self.prepare(on, on_db, ("post1",))
            self.prepare(off, off_db, ("post1",))
            ratios = []
            for repeat in range(s.repeats):
                with _Scraper(on.url + "/metrics"):
                    with_metrics = self.load("metrics", on, "metrics-on", "post1",
                                             concurrency, repeat=repeat)
                without = self.load("metrics", off, "metrics-off", "post1", concurrency,
                                    repeat=repeat)
                rates = (with_metrics["result"]["requests_per_s"],
                         without["result"]["requests_per_s"])
                if rates[1]:
                    ratios.append(rates[0] / rates[1])
        ratio = sorted(ratios)[len(ratios) // 2] if ratios else None
        self.runs.append({"section": "metrics_overhead", "concurrency": concurrency,
                          "ratio": round(ratio, 3) if ratio else None})
        if ratio:
            self.log(f"  POST 1 with metrics: {ratio:.3f} of the rate without "
                     f"(median of {len(ratios)})")

    def line(self):
        s = self.settings
        try:
            line_cycle = importlib.import_module("bench.line_cycle")
        except ImportError as e:
            self.note(f"line: cannot import bench.line_cycle ({e}); section skipped")
            return
        if shutil.which("beanstalkd") is None:
            self.note("line: beanstalkd is missing (apt-get install beanstalkd); "
                      "marconi_tx measured alone")
        self.log(f"line: {s.line_cycles} put/reserve/delete cycles, {s.repeats} runs per "
                 f"server, on {' and '.join(map(str, s.line_connections))} connection(s)")
        self.runs.extend(line_cycle.run(os.path.join(self.workdir, "line"),
                                        count=s.line_cycles, repeats=s.repeats,
                                        log=self.log, connections=s.line_connections))

    def long_poll(self):
        s = self.settings
        from bench import long_poll

        self.log(f"long_poll: wake-up of a waiting claim by a post, {s.long_poll_samples} "
                 f"samples with {', '.join(map(str, s.long_poll_waiters))} claims waiting")
        workdir = os.path.join(self.workdir, "long_poll")
        os.makedirs(workdir, exist_ok=True)
        self.runs.extend(long_poll.wakeup(workdir, s.long_poll_waiters, s.long_poll_samples,
                                          log=self.log))

    def profile(self):
        s = self.settings
        pyspy = profile.find_pyspy()
        if pyspy is None:
            self.note("profile: py-spy is not installed (.venv/bin/pip install py-spy); "
                      "section skipped")
            return
        self.log(f"profile: py-spy at {profile.RATE} Hz for {s.profile_seconds} s under "
                 f"{', '.join(s.profile_scenarios)}, concurrency {s.profile_concurrency}")
        for scenario in s.profile_scenarios:
            db = self.fresh_db(f"profile-{scenario}.db")
            with servers.start_marconi(self.workdir, db, name=f"marconi-profile-{scenario}") \
                    as server:
                self.prepare(server, db, (scenario,))
                if SCENARIOS[scenario].lua == "consume":
                    self.stock(db, scenario, s.profile_seconds)
                raw = os.path.join(self.workdir, f"profile-{scenario}.txt")
                spy = profile.record(server.pids()[0], s.profile_seconds, raw, pyspy)
                lua, params = self.params(scenario)
                result = wrk.run(server.url + "/", lua, params, s.profile_concurrency,
                                 s.profile_seconds)
                stacks = profile.finish(spy, raw)
            folded = profile.costs(stacks)
            self.runs.append({"section": "profile", "scenario": scenario,
                              "concurrency": s.profile_concurrency,
                              "result": result.as_dict(), **folded})
            self.log(f"  {scenario}: {result.rps:.0f} req/s while sampled, "
                     f"{folded['busy']} of {folded['samples']} samples busy")

    def zaqar(self):
        zaqar_compare.run(self)

    def pools(self):
        pool_layouts.run(self)

    def note(self, text):
        self.notes.append(text)
        self.log(text)

    def run(self):
        for section in SECTIONS:
            if section in self.settings.sections:
                started = time.monotonic()
                getattr(self, section)()
                self.log(f"{section}: {time.monotonic() - started:.0f} s")


def _output(argv, check=True):
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=check,
                              cwd=servers.repo_root()).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def metadata(settings, started):
    import twisted

    commit = _output(["git", "rev-parse", "--short", "HEAD"]) or "nocommit"
    dirty = bool(_output(["git", "status", "--porcelain", "--untracked-files=no"]))
    # wrk --version prints its usage too and exits 1.
    version = _output(["wrk", "--version"], check=False) if shutil.which("wrk") else None
    return {
        "date": started.strftime("%Y-%m-%d"),
        "started": started.isoformat(timespec="seconds"),
        "commit": commit,
        "dirty": dirty,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "platform": platform.platform(),
        "wrk": version.splitlines()[0].split(" Copyright")[0].strip() if version else None,
        "settings": {**asdict(settings)},
    }


def now():
    return datetime.now(timezone.utc)


def with_overrides(settings, **changes):
    """``settings`` with the non-None ``changes`` applied."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})


class _Scraper(threading.Thread):
    """Fetches ``url`` every second while in its ``with`` block, as a
    Prometheus server would."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(1.0):
            with urllib.request.urlopen(self.url, timeout=5) as answer:
                answer.read()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.join()
