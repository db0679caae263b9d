"""The benchmark harness (``bench/``): its pure parts, and one tiny run.

Nothing here times anything: the numbers a run produces are only checked
for shape. The end-to-end run loads the servers with wrk when wrk is
installed and otherwise checks that the harness skips those sections and
still writes a well-formed result.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bench import __main__ as bench_main
from bench import prefill, probe, profile, report, run, wrk
from marconi_tx.storage.sqlite.driver import SqliteDriver

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def result_line(**overrides):
    raw = {"duration_us": 2000000, "requests": 5000, "bytes": 1000,
           "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
           "latency_us": {"min": 100, "mean": 350.5, "max": 9000, "p50": 300, "p90": 600,
                          "p99": 1500},
           "messages": 50000, "empty": 0, "unexpected": 0}
    raw.update(overrides)
    return wrk.RESULT_MARK + json.dumps(raw)


class WrkOutputTests(SynchronousTestCase):
    def test_result_line_parsed_in_report_units(self):
        """The BENCH-RESULT line becomes a Result in seconds and milliseconds,
        with rates derived from the run's own duration."""
        out = "Running 2s test @ http://127.0.0.1:1/\n" + result_line() + "\n"
        result = wrk.parse_output(out)
        self.assertEqual(result.duration, 2.0)
        self.assertEqual(result.requests, 5000)
        self.assertEqual(result.rps, 2500.0)
        self.assertEqual(result.mps, 25000.0)
        self.assertEqual(result.latency_ms["p50"], 0.3)
        self.assertEqual(result.latency_ms["p99"], 1.5)
        self.assertEqual(result.failures, 0)

    def test_failures_add_unexpected_statuses_and_socket_errors(self):
        """failures counts unexpected answers and every kind of wrk error."""
        line = result_line(unexpected=3, errors={"connect": 1, "read": 0, "write": 0,
                                                 "status": 2, "timeout": 4})
        self.assertEqual(wrk.parse_output(line).failures, 10)

    def test_missing_result_line_is_an_error(self):
        """Output without a result line (wrk crashed in Lua) raises WrkError."""
        self.assertRaises(wrk.WrkError, wrk.parse_output, "PANIC: unprotected error\n")

    def test_malformed_result_line_is_an_error(self):
        """A truncated result line raises WrkError rather than KeyError."""
        self.assertRaises(wrk.WrkError, wrk.parse_output, wrk.RESULT_MARK + '{"requests": 1}')


class ScriptTests(SynchronousTestCase):
    def test_script_starts_with_params_then_reporter_then_scenario(self):
        """The composed script defines PARAMS before the code that reads it."""
        text = wrk.compose_script("consume", {"queue": "q", "batch": 10, "client_id": "c"})
        self.assertTrue(text.startswith('PARAMS = {batch = 10, client_id = "c", queue = "q"}'))
        self.assertLess(text.index("function done("), text.index("function request("))

    def test_v2_loads_speak_v2_in_a_project(self):
        """The v2 loads run by default, send their project and the v2 body
        shape under /v2; the v1 loads send no project."""
        bench = run.Bench(run.PRESETS["smoke"], self.mktemp())
        self.assertLessEqual({"post1-v2", "consume-v2"}, set(run.PRESETS["full"].scenarios))
        lua, params = bench.params("post1-v2")
        self.assertEqual((lua, params["api"], params["project"]), ("post", "v2", run.PROJECT))
        self.assertEqual(bench.params("post1")[1]["project"], "")
        text = wrk.compose_script(lua, params)
        self.assertIn('\'{"messages":\' .. list', text)

    def test_token_load_sends_a_token(self):
        """post1-token runs by default, posts as post1 does with the bench
        token (its project is the token's); the others send no token."""
        bench = run.Bench(run.PRESETS["smoke"], self.mktemp())
        self.assertIn("post1-token", run.PRESETS["full"].scenarios)
        lua, params = bench.params("post1-token")
        self.assertEqual((lua, params["api"], params["project"], params["token"]),
                         ("post", "v1", "", run.TOKEN))
        self.assertEqual(bench.params("post1")[1]["token"], "")
        self.assertIn('wrk.headers["X-Auth-Token"] = PARAMS.token',
                      wrk.compose_script(lua, params))

    def test_lua_literal_escapes_strings(self):
        """Quotes and backslashes in a parameter cannot break the script."""
        self.assertEqual(wrk.lua_literal('a"b\\c'), '"a\\"b\\\\c"')
        self.assertEqual(wrk.lua_literal(True), "true")
        self.assertRaises(TypeError, wrk.lua_literal, None)

    def test_every_scenario_has_a_script(self):
        """Each scenario of the plan names a Lua file that exists."""
        for scenario in run.SCENARIOS.values():
            self.assertIn(scenario[0], wrk.SCENARIOS)
        for name in [*wrk.SCENARIOS.values(), "report.lua"]:
            self.assertTrue(os.path.exists(os.path.join(wrk.LUA_DIR, name)), name)

    def test_threads_never_exceed_connections(self):
        """wrk refuses fewer connections than threads; the command caps them."""
        argv = wrk.command("http://h:1/", "s.lua", 1, 3, threads=4)
        self.assertIn("-t1", argv)
        self.assertIn("-c1", argv)
        self.assertIn("-d3s", argv)


def throughput_run(target, scenario, concurrency, rps, repeat, p50=1.0):
    return {"section": "throughput", "target": target, "scenario": scenario,
            "concurrency": concurrency, "processes": 1, "repeat": repeat,
            "server_cpu_s": 2.0, "server_cpu_per_process_s": [2.0],
            "result": {"duration_s": 2.0, "requests_per_s": rps, "messages_per_s": rps * 10,
                       "latency_ms": {"p50": p50, "p99": p50 * 3}, "client_cpu_s": 0.5,
                       "unexpected": 0, "errors": {"status": 0}, "empty": 0}}


class SummaryTests(SynchronousTestCase):
    def setUp(self):
        self.runs = [
            throughput_run("ceiling", "get", 1, 10000, 0),
            throughput_run("ceiling", "get", 1, 12000, 1),
            throughput_run("ceiling", "get", 1, 8000, 2),
            throughput_run("ceiling", "get", 16, 20000, 0),
            throughput_run("marconi", "post1", 1, 1000, 0),
            throughput_run("marconi", "post1", 1, 3000, 1),
            throughput_run("marconi", "post1", 1, 2000, 2),
            throughput_run("marconi", "post1", 16, 5000, 0),
            {"section": "depth", "depth": 1000, "prefill_s": 0.1, "samples": 10, "empty": 0,
             "claim": {"p50_ms": 1.0, "p99_ms": 2.0}, "list": {"p50_ms": 0.5, "p99_ms": 1.0}},
            {"section": "depth", "depth": 1000000, "prefill_s": 5.0, "samples": 10, "empty": 0,
             "claim": {"p50_ms": 1.2, "p99_ms": 2.0}, "list": {"p50_ms": 0.5, "p99_ms": 1.0}},
        ]

    def row(self, summary, target, concurrency):
        return next(r for r in summary["throughput"]
                    if r["target"] == target and r["concurrency"] == concurrency)

    def test_rates_are_medians_of_repeats(self):
        """A configuration's rate is the median of its repeats, not the mean."""
        summary = report.summarize(self.runs)
        self.assertEqual(self.row(summary, "ceiling", 1)["requests_per_s"], 10000)
        self.assertEqual(self.row(summary, "marconi", 1)["requests_per_s"], 2000)
        self.assertEqual(self.row(summary, "marconi", 1)["repeats"], 3)

    def test_ratio_uses_the_ceiling_at_the_same_concurrency(self):
        """Each ratio divides by the ceiling measured at its own concurrency."""
        summary = report.summarize(self.runs)
        self.assertEqual(self.row(summary, "marconi", 16)["ratio"], 0.25)
        self.assertEqual(self.row(summary, "ceiling", 1)["ratio"], 1.0)

    def test_ratio_pairs_each_repeat_with_its_ceiling(self):
        """A ratio is the median of each repeat's rate over that repeat's
        ceiling (0.1, 0.25, 0.25), not the ratio of the two medians (0.2)."""
        summary = report.summarize(self.runs)
        self.assertEqual(self.row(summary, "marconi", 1)["ratio"], 0.25)

    def test_v2_is_compared_with_v1_repeat_by_repeat(self):
        """Each v2 load's rate is divided by its v1 load's in the same repeat
        and concurrency (0.5, 0.9, 1.0: median 0.9), and the table flags a
        ratio below the goal."""
        runs = [*self.runs,
                throughput_run("marconi", "post1-v2", 1, 500, 0),
                throughput_run("marconi", "post1-v2", 1, 2700, 1),
                throughput_run("marconi", "post1-v2", 1, 2000, 2),
                throughput_run("marconi", "post1-v2", 16, 4000, 0)]
        rows = report.summarize(runs)["v2_vs_v1"]
        self.assertEqual([(r["scenario"], r["v1_scenario"], r["concurrency"], r["ratio"])
                          for r in rows],
                         [("post1-v2", "post1", 1, 0.9), ("post1-v2", "post1", 16, 0.8)])
        meta = {"date": "2024-01-02", "commit": "abc1234", "dirty": False, "cores": 2,
                "python": "3.11", "twisted": "24.0", "wrk": "wrk 4.1.0",
                "settings": asdict(run.PRESETS["quick"]), "notes": []}
        table = report.format_table(report.document(meta, runs))
        self.assertIn("v2 POST 1 message", table)
        self.assertEqual(table.count("below goal"), 1)

    def test_rates_are_also_given_against_the_raw_ceiling(self):
        """Each row has ratio (over the twisted.web ceiling's GET) and
        ratio_raw (over the raw protocol's GET), and marconi_tx's POST 1 is
        given over the same load on each ceiling, repeat by repeat (1000/2000,
        3000/2000, 2000/4000 over twisted.web: median 0.5; over the raw
        protocol, twice its rates: 0.25)."""
        runs = list(self.runs)
        for repeat, rate in enumerate((2000, 2000, 4000)):
            runs.append(throughput_run("ceiling", "post1", 1, rate, repeat))
            runs.append(throughput_run("raw-ceiling", "post1", 1, rate * 2, repeat))
            runs.append(throughput_run("raw-ceiling", "get", 1, 20000, repeat))
        summary = report.summarize(runs)
        marconi = self.row(summary, "marconi", 1)
        self.assertEqual((marconi["ratio"], marconi["ratio_raw"]), (0.25, 0.1))
        self.assertEqual(summary["post1_vs_ceilings"], [
            {"concurrency": 1, "marconi_rps": 2000, "ceiling_rps": 2000, "vs_ceiling": 0.5,
             "raw_rps": 4000, "vs_raw": 0.25},
            {"concurrency": 16, "marconi_rps": 5000, "ceiling_rps": None, "vs_ceiling": None,
             "raw_rps": None, "vs_raw": None}])
        meta = {"date": "2024-01-02", "commit": "abc1234", "dirty": False, "cores": 2,
                "python": "3.11", "twisted": "24.0", "wrk": "wrk 4.1.0",
                "settings": asdict(run.PRESETS["quick"]), "notes": []}
        table = report.format_table(report.document(meta, runs))
        self.assertIn("raw-ceiling", table)
        self.assertIn("raw protocol req/s", table)

    def test_zaqar_ratio_is_marconi_over_zaqar_repeat_by_repeat(self):
        """Each load and version of the zaqar section gives marconi_tx's
        messages/s over Zaqar's in the same repeat (10/2, 30/3, 20/5: median
        5), both medians, their failures and CPU shares; the table flags a
        ratio under the goal of 3 and failures."""
        runs = []
        for repeat, (mine, theirs) in enumerate(((1000, 200), (3000, 300), (2000, 500))):
            for target, rate in (("marconi", mine), ("zaqar", theirs)):
                record = throughput_run(target, "post1", 16, rate, repeat)
                record.update(section="zaqar", api="v2")
                runs.append(record)
        slow = throughput_run("zaqar", "list", 16, 100, 0)
        slow.update(section="zaqar", api="v2")
        slow["result"]["unexpected"] = 2
        fast = throughput_run("marconi", "list", 16, 200, 0)
        fast.update(section="zaqar", api="v2")
        runs += [fast, slow]
        rows = report.summarize(runs)["zaqar"]
        self.assertEqual(rows[0], {
            "scenario": "post1", "api": "v2", "concurrency": 16, "marconi_mps": 20000,
            "zaqar_mps": 3000, "ratio": 5.0, "repeats": 3, "marconi_failures": 0,
            "zaqar_failures": 0, "marconi_cpu": 1.0, "zaqar_cpu": 1.0})
        self.assertEqual((rows[1]["ratio"], rows[1]["zaqar_failures"]), (2.0, 2))
        meta = {"date": "2024-01-02", "commit": "abc1234", "dirty": False, "cores": 2,
                "python": "3.11", "twisted": "24.0", "wrk": "wrk 4.1.0",
                "settings": asdict(run.PRESETS["quick"]), "notes": [],
                "zaqar": {"version": "23.0.1", "runner": "gunicorn"}}
        table = report.format_table(report.document(meta, runs))
        self.assertIn("marconi_tx against Zaqar 23.0.1 (gunicorn", table)
        self.assertIn("2 zaqar failed", table)
        runs[0]["result"]["messages_per_s"] = 0.0
        runs[2]["result"]["messages_per_s"] = runs[4]["result"]["messages_per_s"] = 1.0
        table = report.format_table(report.document(meta, runs))
        self.assertIn("below goal", table)

    def test_pool_layouts_are_compared_with_their_reference_repeat_by_repeat(self):
        """Each layout of the pools section gives its messages/s over its
        reference's in the same repeat: sqlite layouts over one process on
        one file (2 pools: 30/10, 50/20, 40/10, median 3), MongoDB layouts
        over the 1-pool MongoDB layout; the table lists every layout."""
        from bench import pools

        runs = []
        layouts = ((pools.REFERENCE, "sqlite", 0, 1, (100, 200, 100)),
                   ("2 pools w2", "sqlite", 2, 2, (300, 500, 400)),
                   (pools.MONGO_REFERENCE, "mongodb", 1, 2, (10, 10, 10)),
                   ("2 mongo pools w2", "mongodb", 2, 2, (15, 20, 25)))
        for target, engine, count, processes, rates in layouts:
            for repeat, rate in enumerate(rates):
                record = throughput_run(target, "consume", 64, rate, repeat)
                record.update(section="pools", engine=engine, pools=count,
                              processes=processes, api="v2")
                runs.append(record)
        rows = {row["layout"]: row for row in report.summarize(runs)["pools"]}
        self.assertEqual(rows["2 pools w2"]["ratio"], 3.0)
        self.assertEqual(rows["2 pools w2"]["reference"], pools.REFERENCE)
        self.assertEqual(rows["2 mongo pools w2"]["ratio"], 2.0)
        self.assertEqual(rows["2 mongo pools w2"]["reference"], pools.MONGO_REFERENCE)
        self.assertEqual(rows[pools.REFERENCE]["ratio"], 1.0)
        meta = {"date": "2024-01-02", "commit": "abc1234", "dirty": False, "cores": 2,
                "python": "3.11", "twisted": "24.0", "wrk": "wrk 4.1.0",
                "settings": asdict(run.PRESETS["quick"]), "notes": []}
        table = report.format_table(report.document(meta, runs))
        self.assertIn("2 mongo pools w2", table)

    def test_cpu_is_a_share_of_the_run(self):
        """CPU seconds are divided by the run's duration (1.0 = one core)."""
        row = self.row(report.summarize(self.runs), "marconi", 1)
        self.assertEqual(row["server_cpu"], 1.0)
        self.assertEqual(row["client_cpu"], 0.25)

    def test_depth_ratio_is_against_the_smallest_depth(self):
        """Depth latencies are compared with the shallowest queue's."""
        depth = report.summarize(self.runs)["depth"]
        deepest = next(r for r in depth if r["depth"] == 1000000)
        self.assertEqual(deepest["claim"]["p50_vs_smallest"], 1.2)
        self.assertEqual(deepest["list"]["p50_vs_smallest"], 1.0)

    def test_scale_speedup_is_against_one_process(self):
        """The scale rows give each rate over the one-process rate."""
        runs = []
        for processes, rps in ((1, 1000), (2, 1500)):
            record = throughput_run("marconi", "post1", 64, rps, 0)
            record.update(section="scale", processes=processes,
                          server_cpu_per_process_s=[1.0] * processes)
            runs.append(record)
        scale = report.summarize(runs)["scale"]
        self.assertEqual([r["speedup"] for r in scale], [1.0, 1.5])
        self.assertEqual(scale[1]["per_process_cpu"], [0.5, 0.5])

    def test_line_ratio_is_against_beanstalkd(self):
        """Line cycle rates are compared with beanstalkd's in the same run."""
        runs = [{"section": "line", "target": "beanstalkd", "cycles_per_s": 4000.0},
                {"section": "line", "target": "marconi", "cycles_per_s": 1000.0}]
        line = report.summarize(runs)["line"]
        self.assertEqual([r["ratio_to_beanstalkd"] for r in line], [1.0, 0.25])

    def test_line_ratios_are_medians_of_each_repeat(self):
        """Each line row's ratio to a beanstalkd is the median of the ratios
        of the repeats, each against the same repeat and connections."""
        runs = []
        for repeat, (plain, binlog, marconi) in enumerate(
                [(4000.0, 2000.0, 1000.0), (1000.0, 1000.0, 500.0), (2000.0, 1000.0, 1000.0)]):
            for target, rate in (("beanstalkd", plain), ("beanstalkd-binlog", binlog),
                                 ("marconi_tx", marconi)):
                runs.append({"section": "line", "target": target, "connections": 16,
                             "repeat": repeat, "cycles_per_s": rate})
        [row] = [r for r in report.summarize(runs)["line"] if r["target"] == "marconi_tx"]
        self.assertEqual((row["connections"], row["cycles_per_s"]), (16, 1000.0))
        self.assertEqual(row["ratio_to_beanstalkd"], 0.5)  # of 0.25, 0.5, 0.5
        self.assertEqual(row["ratio_to_beanstalkd-binlog"], 0.5)  # of 0.5, 0.5, 1.0

    def test_table_and_file(self):
        """The table names every load; the file is JSON named by date,
        commit and preset, holding the raw runs and their summary."""
        settings = run.PRESETS["quick"]
        meta = {"date": "2024-01-02", "commit": "abc1234", "dirty": False, "cores": 2,
                "python": "3.11", "twisted": "24.0", "wrk": "wrk 4.1.0",
                "settings": asdict(settings), "notes": ["a note"]}
        result = report.document(meta, self.runs)
        table = report.format_table(result)
        for label in ("GET fixed JSON", "POST 1 message", "1000000", "note: a note"):
            self.assertIn(label, table)
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = report.write(result, folder)
        self.assertEqual(os.path.basename(path), "2024-01-02-abc1234-quick.json")
        with open(path, encoding="utf-8") as f:
            loaded = json.load(f)
        self.assertEqual(loaded["schema"], report.SCHEMA_VERSION)
        self.assertEqual(len(loaded["runs"]), len(self.runs))
        self.assertEqual(loaded["summary"], json.loads(json.dumps(result["summary"])))


class SettingsTests(SynchronousTestCase):
    def test_presets_are_runnable(self):
        """Every preset passes the settings check."""
        for settings in run.PRESETS.values():
            settings.check()

    def test_full_run_fits_its_budget(self):
        """The default run's loads (a 3-minute WAL soak included) take under
        21 minutes (15 before the raw protocol ceiling joined the throughput
        section and the zaqar and pools sections were added), the quick
        run's under 5 (4 before the pools section)."""
        self.assertLess(run.PRESETS["full"].estimate(), 21 * 60)
        self.assertLess(run.PRESETS["quick"].estimate(), 5 * 60)

    def test_bad_settings_rejected(self):
        """Fractional durations (wrk takes whole seconds), unknown scenarios and
        sections are refused before anything starts."""
        full = run.PRESETS["full"]
        for changes in ({"duration": 1.5}, {"scenarios": ("nope",)},
                        {"sections": ("nope",)}, {"concurrency": (0,)}):
            self.assertRaises(ValueError, run.with_overrides(full, **changes).check)

    def test_command_line_overrides_preset(self):
        """Flags override the chosen preset's values and leave the rest."""
        args = bench_main.parser().parse_args(["--quick", "--concurrency", "4,8",
                                               "--sections", "depth"])
        settings = bench_main.settings_from(args)
        self.assertEqual(settings.concurrency, (4, 8))
        self.assertEqual(settings.sections, ("depth",))
        self.assertEqual(settings.duration, run.PRESETS["quick"].duration)


class ZaqarSetupTests(SynchronousTestCase):
    def setUp(self):
        from bench import zaqar

        self.zaqar = zaqar
        self.cache = self.mktemp()
        os.makedirs(self.cache)
        previous = os.environ.get("MARCONI_BENCH_CACHE")
        os.environ["MARCONI_BENCH_CACHE"] = self.cache
        self.addCleanup(lambda: os.environ.pop("MARCONI_BENCH_CACHE") if previous is None
                        else os.environ.update(MARCONI_BENCH_CACHE=previous))

    def test_install_is_complete_only_with_its_marker(self):
        """Zaqar counts as installed once its virtualenv's marker names the
        packages of this harness: not before, nor after PACKAGES changed."""
        zaqar = self.zaqar
        self.assertTrue(zaqar.venv_dir().startswith(self.cache))
        self.assertFalse(zaqar.installed())
        os.makedirs(zaqar.venv_dir())
        with open(os.path.join(zaqar.venv_dir(), "installed"), "w") as f:
            f.write("zaqar==1.0\n")
        self.assertFalse(zaqar.installed())
        with open(os.path.join(zaqar.venv_dir(), "installed"), "w") as f:
            f.write("\n".join(zaqar.PACKAGES) + "\n")
        self.assertTrue(zaqar.installed())

    def test_nothing_installed_without_leave(self):
        """With installs forbidden, a missing Zaqar (or redis-server) is
        ZaqarMissing, saying what to do, and nothing is installed."""
        with self.assertRaises(self.zaqar.ZaqarMissing) as caught:
            self.zaqar.ensure(lambda text: None, allow_install=False)
        self.assertIn("missing" if shutil.which("redis-server") is None
                      else "--no-install", str(caught.exception))
        self.assertEqual(os.listdir(self.cache), [])

    def test_config_selects_redis_and_no_auth(self):
        """Zaqar's settings file: redis for both stores at the given port,
        no auth strategy, unreliable mode."""
        folder = self.mktemp()
        os.makedirs(folder)
        with open(self.zaqar.config(folder, 6390), encoding="utf-8") as f:
            text = f.read()
        for line in ("auth_strategy =\n", "unreliable = True", "message_store = redis",
                     "management_store = redis", "uri = redis://127.0.0.1:6390"):
            self.assertIn(line, text)

    def test_loads_over_another_version(self):
        """The section's loads keep their queue and batch over another API
        version, with the v2 project; the listing script sends it."""
        bench = run.Bench(run.PRESETS["smoke"], self.mktemp())
        lua, params = bench.params("list", "v2")
        self.assertEqual((lua, params["api"], params["project"], params["batch"]),
                         ("list", "v2", run.PROJECT, 10))
        self.assertEqual(bench.params("list")[1]["api"], "v1")
        self.assertIn('wrk.headers["X-Project-ID"] = PARAMS.project',
                      wrk.compose_script(lua, params))


class RawCeilingTests(SynchronousTestCase):
    def test_one_answer_per_complete_request(self):
        """Pipelined requests get one answer each, in order (201 to a POST,
        200 otherwise); a POST's body is skipped by its Content-Length, and an
        incomplete request (head or body) is kept for the next read."""
        from bench import raw_ceiling

        data = (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
                b"POST /q HTTP/1.1\r\ncontent-LENGTH: 8\r\n\r\n\r\n\r\nabcd"
                b"GET / HTTP/1.1\r\n")
        out, rest = raw_ceiling.answers(data)
        self.assertEqual(out, raw_ceiling.OK + raw_ceiling.CREATED)
        self.assertEqual(rest, b"GET / HTTP/1.1\r\n")
        partial = b"POST /q HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"
        self.assertEqual(raw_ceiling.answers(partial), (b"", partial))

    def test_answer_is_well_formed_http(self):
        """The fixed answer's Content-Length is its body's length."""
        from bench import raw_ceiling

        head, body = raw_ceiling.OK.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertEqual(raw_ceiling.body_length(b"x" + head), len(body))


class LineCeilingTests(SynchronousTestCase):
    def _connected(self):
        from twisted.internet.protocol import Factory
        from twisted.internet.testing import StringTransport

        from bench import line_ceiling

        proto = Factory.forProtocol(line_ceiling.FixedReplies).buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport

    def test_replies_to_a_cycle(self):
        """A put whose body comes in two reads is answered once it is whole;
        reserve hands back that body; delete, use, watch and ignore get
        their fixed replies, pipelined commands answered in order."""
        proto, transport = self._connected()
        proto.dataReceived(b"use t\r\nwatch t\r\nignore default\r\nput 1 0 60 5\r\nab")
        self.assertEqual(transport.value(), b"USING t\r\nWATCHING 1\r\nWATCHING 1\r\n")
        transport.clear()
        proto.dataReceived(b"cde\r\nreserve-with-timeout 10\r\ndelete 1\r\n")
        self.assertEqual(transport.value(),
                         b"INSERTED 1\r\nRESERVED 1 5\r\nabcde\r\nDELETED\r\n")

    def test_unknown_commands(self):
        """A command the cycle does not use is answered UNKNOWN_COMMAND, and
        an incomplete line waits for the rest."""
        proto, transport = self._connected()
        proto.dataReceived(b"stats\r\nres")
        self.assertEqual(transport.value(), b"UNKNOWN_COMMAND\r\n")
        proto.dataReceived(b"erve\r\n")
        self.assertEqual(transport.value(), b"UNKNOWN_COMMAND\r\nRESERVED 1 3\r\njob\r\n")


class PrefillTests(SynchronousTestCase):
    def test_prefilled_messages_are_what_the_driver_reads(self):
        """Rows written by the prefill are ordinary messages to the real
        driver: listed in order, with the prefill's body and ttl, claimable."""
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "fill.db")
        prefill.fill(path, "q", 25, batch=10, now=1000)
        self.assertEqual(prefill.depth(path, "q"), 25)
        clock = Clock()
        clock.advance(1010)
        driver = SqliteDriver(path, clock)
        driver.open_now()
        self.addCleanup(driver.close)
        listed = self.successResultOf(driver.messages.list(None, "q", limit=30))
        self.assertEqual(len(listed), 25)
        self.assertEqual(listed[0].body, {"event": "prefill"})
        self.assertEqual(listed[0].ttl, prefill.PREFILL_TTL)
        self.assertEqual(listed[0].age, 10)
        ids = [int(m.id) for m in listed]
        self.assertEqual(ids, sorted(ids))
        claim = self.successResultOf(driver.claims.create(None, "q", 60, 60, 5))
        self.assertEqual(len(claim.messages), 5)

    def locked_file(self):
        """A filled file, and a function that has another connection take
        its write lock and let go of it 0.2 s later."""
        import sqlite3
        import threading

        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "fill.db")
        prefill.fill(path, "other", 1)
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.addCleanup(holder.close)

        def hold():
            holder.execute("BEGIN IMMEDIATE")
            release = threading.Timer(0.2, holder.execute, ("COMMIT",))
            release.start()
            self.addCleanup(release.cancel)

        return path, hold

    def test_fill_waits_for_a_daemon_holding_the_lock(self):
        """Filling a file whose lock another process holds waits for it (the
        queue is created once the lock is free) instead of failing."""
        path, hold = self.locked_file()
        hold()
        prefill.fill(path, "q", 7)
        self.assertEqual(prefill.depth(path, "q"), 7)

    def test_batches_wait_for_the_lock(self):
        """A batch begins once another process lets go of the lock, and
        gives up with the lock error after its timeout."""
        import sqlite3

        path, hold = self.locked_file()
        driver = prefill.open_driver(path)
        self.addCleanup(driver.close)
        hold()
        with self.assertRaises(sqlite3.OperationalError):
            prefill.begin(driver.db, timeout=0.05)
        prefill.begin(driver.db, timeout=5)
        self.assertTrue(driver.db.in_transaction)
        driver.db.execute("COMMIT")

    def test_fill_appends(self):
        """A second fill adds to the queue (the consume stock is topped up)."""
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "fill.db")
        prefill.fill(path, "q", 3)
        prefill.fill(path, "q", 4)
        self.assertEqual(prefill.depth(path, "q"), 7)
        self.assertEqual(prefill.depth(path, "other"), 0)


class ProfileTests(SynchronousTestCase):
    RAW = "\n".join([
        "run (/x/site-packages/twisted/internet/base.py:1);"
        "EPollReactor.doPoll (/x/site-packages/twisted/internet/epollreactor.py:244) 50",
        "run (/x/site-packages/twisted/internet/base.py:1);"
        "post (/work/main/marconi_tx/storage/sqlite/messages.py:9);"
        "SqliteDriver._commit (/work/main/marconi_tx/storage/sqlite/driver.py:157) 30",
        "run (/x/site-packages/twisted/internet/base.py:1);"
        "HTTPFactory.log (/x/site-packages/twisted/web/http.py:5);"
        "untilConcludes (/x/site-packages/twisted/python/util.py:760) 20",
        "not a stack line",
    ])

    def test_costs_are_shares_of_busy_samples(self):
        """Idle reactor samples are counted apart; self, layer and known-cost
        shares are of the busy samples, with line numbers folded away and
        a shared helper's time given to its caller's layer."""
        folded = profile.costs(profile.parse_raw(self.RAW))
        self.assertEqual((folded["samples"], folded["busy"]), (100, 50))
        self.assertEqual(folded["self"][0],
                         ["SqliteDriver._commit (marconi_tx/storage/sqlite/driver.py)", 60.0])
        self.assertEqual(dict(folded["layers"]), {"sqlite driver": 60.0, "twisted.web": 40.0})
        spots = dict(folded["hot_spots"])
        self.assertEqual(spots["access log line (HTTPFactory.log)"], 40.0)
        self.assertEqual(spots["sqlite write transactions (SqliteDriver._commit)"], 60.0)
        # Inclusive costs are listed for marconi_tx's functions only.
        self.assertEqual(dict(folded["total"]), {
            "post (marconi_tx/storage/sqlite/messages.py)": 60.0,
            "SqliteDriver._commit (marconi_tx/storage/sqlite/driver.py)": 60.0})

    def test_no_busy_samples(self):
        """An idle daemon gives empty lists rather than a division by zero."""
        folded = profile.costs(profile.parse_raw(self.RAW.splitlines()[0]))
        self.assertEqual(folded["busy"], 0)
        self.assertEqual(folded["self"], [])


class PercentileTests(SynchronousTestCase):
    def test_nearest_rank(self):
        """Percentiles pick a measured sample by nearest rank."""
        samples = list(range(1, 101))
        self.assertEqual(probe.percentile(samples, 0.5), 50)
        self.assertEqual(probe.percentile(samples, 0.99), 99)
        self.assertEqual(probe.percentile([7], 0.99), 7)
        self.assertIsNone(probe.percentile([], 0.5))


class AdoptTests(SynchronousTestCase):
    def test_program_inherits_the_socket_as_systemd_would(self):
        """bench.adopt hands the program its socket as descriptor 3 with
        LISTEN_FDS, LISTEN_FDNAMES and its own pid in LISTEN_PID: what
        Twisted's systemd: endpoint needs to adopt it."""
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        check = ("import os, socket; s = socket.socket(fileno=3); "
                 "print(os.environ['LISTEN_PID'] == str(os.getpid()), "
                 "os.environ['LISTEN_FDS'], os.environ['LISTEN_FDNAMES'], "
                 "s.getsockname()[1]); s.detach()")
        out = subprocess.run(
            [sys.executable, "-m", "bench.adopt", str(listener.fileno()), sys.executable,
             "-c", check], cwd=REPO, pass_fds=(listener.fileno(),), capture_output=True,
            text=True, timeout=60)
        self.assertEqual(out.stdout.split(),
                         ["True", "1", "http", str(listener.getsockname()[1])], out.stderr)


class SmokeRunTests(SynchronousTestCase):
    def test_smoke_run_writes_a_well_formed_result(self):
        """A tiny run of the real harness against real servers writes a
        result file whose summary has a row for each load it ran: with wrk,
        the two ceilings' (twisted.web, raw protocol), marconi_tx's POST 1
        over each, and the marconi_tx rows (one and two daemons too) with
        requests counted and none failed, v1, v2 and token-auth loads alike,
        each v2 load compared with its v1 load and post1-token with post1;
        without wrk, those sections are skipped with a note and the depth,
        line and long-poll wake-up rows remain. The zaqar section runs when
        Zaqar is already installed (the smoke run installs nothing), with a
        ratio per load and no failures; otherwise it is skipped with a note."""
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        said = []
        status = bench_main.main(
            ["--smoke", "--no-install",
             "--sections", "throughput,depth,scale,line,long_poll,zaqar",
             "--scenarios", "post1,consume,post1-v2,consume-v2,post1-token", "--depths", "50",
             "--out", folder],
            say=said.append)
        self.assertEqual(status, 0, "\n".join(said))
        [name] = os.listdir(folder)
        self.assertTrue(name.endswith("-smoke.json"))
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            result = json.load(f)
        summary = result["summary"]
        self.assertEqual([row["depth"] for row in summary["depth"]], [50])
        self.assertEqual(summary["depth"][0]["empty"], 0)
        # The line endpoint needs no wrk; beanstalkd is measured when present.
        line = {row["target"]: row for row in summary["line"]}
        self.assertGreater(line["marconi_tx"]["cycles_per_s"], 0)
        # ... and over the bare Twisted line protocol of the same run.
        self.assertGreater(line["line-ceiling"]["cycles_per_s"], 0)
        self.assertGreater(line["marconi_tx"]["ratio_to_line-ceiling"], 0)
        self.assertEqual("beanstalkd" in line, shutil.which("beanstalkd") is not None)
        # Wake-up of waiting claims: a row per number of waiting claims.
        self.assertEqual([(row["waiters"], row["samples"]) for row in summary["long_poll"]],
                         [(1, 5), (3, 5)])
        self.assertTrue(all(row["p99_ms"] >= row["p50_ms"] > 0
                            for row in summary["long_poll"]))
        if wrk.available():
            loads = sorted((row["target"], row["scenario"]) for row in summary["throughput"])
            self.assertEqual(loads, [("ceiling", "get"), ("ceiling", "post1"),
                                     ("marconi", "consume"), ("marconi", "consume-v2"),
                                     ("marconi", "post1"), ("marconi", "post1-token"),
                                     ("marconi", "post1-v2"),
                                     ("raw-ceiling", "get"), ("raw-ceiling", "post1")])
            # marconi_tx's POST 1 over the same load on each ceiling.
            [versus] = summary["post1_vs_ceilings"]
            self.assertTrue(versus["vs_ceiling"] > 0 and versus["vs_raw"] > 0, versus)
            compared = [(row["scenario"], row["v1_scenario"]) for row in summary["v2_vs_v1"]]
            self.assertEqual(sorted(compared), [("consume-v2", "consume"),
                                                ("post1-token", "post1"), ("post1-v2", "post1")])
            self.assertTrue(all(row["ratio"] > 0 for row in summary["v2_vs_v1"]))
            # Two daemons sharing one port through adopted sockets answer too.
            scale = sorted((row["target"], row["processes"]) for row in summary["scale"])
            self.assertEqual(scale, [("ceiling", 1), ("ceiling", 2),
                                     ("marconi", 1), ("marconi", 2)])
            for row in summary["throughput"] + summary["scale"]:
                self.assertGreater(row["requests_per_s"], 0)
                self.assertEqual(row["failures"], 0)
            from bench import zaqar

            if zaqar.installed() and shutil.which("redis-server"):
                self.assertEqual(sorted(row["scenario"] for row in summary["zaqar"]),
                                 ["consume", "list", "post1", "post10"])
                for row in summary["zaqar"]:
                    self.assertGreater(row["ratio"], 0)
                    self.assertEqual((row["marconi_failures"], row["zaqar_failures"]), (0, 0))
                self.assertEqual(result["meta"]["zaqar"]["version"], zaqar.VERSION)
            else:
                self.assertEqual(summary["zaqar"], [])
                self.assertTrue(any(note.startswith("zaqar: ")
                                    for note in result["meta"]["notes"]))
        else:
            self.assertEqual(summary["throughput"] + summary["scale"] + summary["zaqar"], [])
            self.assertTrue(any("wrk is missing" in note for note in result["meta"]["notes"]))



class SqliteCallsSmokeTests(SynchronousTestCase):
    def test_measures_every_call_at_every_depth(self):
        """bench.sqlite_calls times each call type at each depth on a real file."""
        from bench import sqlite_calls

        workdir = self.mktemp()
        os.makedirs(workdir)
        rows = sqlite_calls.measure([10, 20], workdir)
        self.assertEqual([(depth, name) for depth, name, _, _ in rows],
                         [(d, n) for d in (10, 20)
                          for n in ("post 1", "post 10", "list 10", "claim 10 + delete")])
        self.assertTrue(all(0 < p50 <= p99 for _, _, p50, p99 in rows))
