"""Driving wrk: script composition, command lines, result parsing.

Each load is one wrk run of a Lua scenario from ``bench/lua``. The script
wrk gets is composed here: a ``PARAMS`` table (queue, batch size,
Client-ID), the shared reporter (``report.lua``, whose ``done()`` prints one
``BENCH-RESULT {json}`` line) and the scenario. Parsing that line, instead
of wrk's human report, keeps the numbers exact and the parser testable
without wrk.
"""

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

LUA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lua")

#: Scenario name -> Lua file in ``LUA_DIR``.
SCENARIOS = {
    "get": "get.lua",
    "post": "post.lua",
    "list": "list.lua",
    "consume": "consume.lua",
}

RESULT_MARK = "BENCH-RESULT "

#: One wrk thread: it drives 64 connections at far more than the server's
#: rate, and leaves the second core of a 2-core machine to the servers.
THREADS = 1

#: Requests slower than this are wrk timeouts; generous, so that a slow
#: server shows as high latency rather than as errors.
TIMEOUT = "10s"


class WrkError(Exception):
    """wrk failed or printed no result line."""


def lua_literal(value):
    """A Lua literal for a str, int, float or bool."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid Lua string
    raise TypeError(f"no Lua literal for {value!r}")


def compose_script(scenario, params):
    """The text of the wrk script for ``scenario`` with ``params`` (a dict)."""
    fields = ", ".join(f"{key} = {lua_literal(value)}" for key, value in sorted(params.items()))
    parts = [f"PARAMS = {{{fields}}}\n"]
    for name in ("report.lua", SCENARIOS[scenario]):
        with open(os.path.join(LUA_DIR, name), encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)


def command(url, script_path, connections, duration, threads=THREADS, wrk="wrk"):
    """The wrk argument vector for one run."""
    threads = max(1, min(threads, connections))
    return [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s",
            f"--timeout={TIMEOUT}", "-s", script_path, url]


@dataclass
class Result:
    """One wrk run, in the units the report uses."""

    duration: float  # seconds
    requests: int
    messages: int
    empty: int
    unexpected: int
    errors: dict
    latency_ms: dict  # min, mean, max, p50, p90, p99
    client_cpu: float = 0.0  # CPU seconds wrk used
    extra: dict = field(default_factory=dict)

    @property
    def rps(self):
        return self.requests / self.duration if self.duration else 0.0

    @property
    def mps(self):
        return self.messages / self.duration if self.duration else 0.0

    @property
    def failures(self):
        """Requests that did not get an expected answer."""
        return self.unexpected + sum(self.errors.values())

    def as_dict(self):
        return {
            "duration_s": round(self.duration, 3),
            "requests": self.requests,
            "messages": self.messages,
            "requests_per_s": round(self.rps, 1),
            "messages_per_s": round(self.mps, 1),
            "latency_ms": self.latency_ms,
            "empty": self.empty,
            "unexpected": self.unexpected,
            "errors": self.errors,
            "client_cpu_s": round(self.client_cpu, 3),
            **self.extra,
        }


def parse_output(text):
    """
    The ``Result`` of a wrk run from its standard output.

    @raise WrkError: no ``BENCH-RESULT`` line, or a malformed one.
    """
    for line in text.splitlines():
        if line.startswith(RESULT_MARK):
            try:
                raw = json.loads(line[len(RESULT_MARK):])
                latency = {key: round(value / 1000.0, 3)
                           for key, value in raw["latency_us"].items()}
                return Result(
                    duration=raw["duration_us"] / 1e6,
                    requests=int(raw["requests"]),
                    messages=int(raw["messages"]),
                    empty=int(raw["empty"]),
                    unexpected=int(raw["unexpected"]),
                    errors={key: int(value) for key, value in raw["errors"].items()},
                    latency_ms=latency,
                )
            except (ValueError, KeyError, TypeError) as e:
                raise WrkError(f"malformed result line {line!r}: {e}")
    raise WrkError("wrk printed no result line:\n" + text[-2000:])


def available(wrk="wrk"):
    return shutil.which(wrk) is not None


def run(url, scenario, params, connections, duration, threads=THREADS, wrk="wrk"):
    """
    Run wrk once and return its ``Result``, with the CPU time wrk used.

    @raise WrkError: wrk missing, failing, or printing no result.
    """
    if not available(wrk):
        raise WrkError(f"{wrk} is not installed")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix=f"bench-{scenario}-",
                                     delete=False) as f:
        f.write(compose_script(scenario, params))
        script = f.name
    try:
        argv = command(url, script, connections, duration, threads, wrk)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        out = proc.stdout.read()
        proc.stdout.close()
        # wait4 rather than wait: its rusage is the client's CPU cost.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        os.unlink(script)
    if proc.returncode != 0:
        raise WrkError(f"{' '.join(argv)} exited {proc.returncode}:\n{out[-2000:]}")
    result = parse_output(out)
    result.client_cpu = usage.ru_utime + usage.ru_stime
    return result
