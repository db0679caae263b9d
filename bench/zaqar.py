"""Upstream Zaqar on its redis driver: the reference of the ``zaqar`` section.

Zaqar (``zaqar`` ``VERSION`` from PyPI) lives in a virtualenv of its own
under the bench cache folder (``$MARCONI_BENCH_CACHE``, by default
``~/.cache/marconi_tx-bench``), installed on first use with pip and kept for
later runs (about a minute); a failed install leaves nothing behind and is
retried the next time. Its storage is a ``redis-server`` (the Debian package, apt-get
installed when missing) started on a free port without persistence
(``--save "" --appendonly no``): Zaqar's writes never reach the disk, while
marconi_tx's go to its sqlite file, so the comparison favours Zaqar there.

Zaqar has no server of its own worth measuring (``zaqar-server`` is
``wsgiref``'s single-threaded HTTP/1.0 server, a connection per request);
it is a WSGI application, run here under gunicorn (``RUNNER``): one process,
as marconi_tx is, with the ``gthread`` worker, which keeps connections alive
as wrk's are. uWSGI (upstream's deployment, ``--http11-socket``, 1 process,
1 or 4 threads) and gunicorn's ``sync`` worker or 1 or 16 threads all gave
the same rate within the machine's noise (740-950 POST 1 requests/s at 16
connections). Zaqar runs without authentication (``auth_strategy`` empty)
and with ``unreliable`` set (it would otherwise insist on a reliable
store); every request carries the ``Client-ID`` and ``X-Project-ID`` that
its v2 API requires.

Zaqar 23 serves only v2: its v1 and v1.1 routes are gone
(``zaqar/transport/wsgi`` has only ``v2_0``; ``/v1/queues`` answers 404).
``served_apis`` asks the running server rather than assuming it.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from bench import deps, probe, servers

VERSION = "23.0.1"
#: The WSGI server and its settings (also in the result's metadata).
RUNNER = "gunicorn, 1 process, gthread worker, 4 threads"
GUNICORN = ["-w", "1", "-k", "gthread", "--threads", "4"]
REDIS = {"redis-server": "redis-server"}
#: What pip installs: Zaqar, the client of its redis driver (not one of
#: Zaqar's requirements), the WSGI server.
PACKAGES = (f"zaqar=={VERSION}", "redis", "gunicorn")


class ZaqarMissing(Exception):
    """Zaqar or redis-server is not installed and cannot be (why: the text)."""


def cache_dir():
    default = os.path.join(os.path.expanduser("~"), ".cache", "marconi_tx-bench")
    return os.environ.get("MARCONI_BENCH_CACHE") or default


def venv_dir():
    return os.path.join(cache_dir(), f"zaqar-{VERSION}")


def _program(name):
    return os.path.join(venv_dir(), "bin", name)


def _marker():
    return os.path.join(venv_dir(), "installed")


def installed():
    """Whether Zaqar's virtualenv is complete: an install ends by writing
    the packages it installed to a file, so that a change of ``PACKAGES``
    installs again."""
    try:
        with open(_marker(), encoding="utf-8") as f:
            return f.read().split() == list(PACKAGES)
    except OSError:
        return False


def install(say):
    """
    Make Zaqar's virtualenv: ``PACKAGES``, with pip (its usual index and
    mirrors), marked complete once pip has succeeded.

    @raise ZaqarMissing: pip failed (its output's tail is in the message).
    """
    target = venv_dir()
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    say(f"zaqar: installing {' '.join(PACKAGES)} into {target} (once)")
    steps = ([sys.executable, "-m", "venv", target],
             [os.path.join(target, "bin", "python"), "-m", "pip", "install", "-q",
              *PACKAGES])
    for argv in steps:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
        if done.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            tail = "\n".join(line for line in done.stdout.splitlines()
                             if not line.startswith("WARNING: Location"))[-1500:]
            raise ZaqarMissing(f"{' '.join(argv[:4])} ... exited {done.returncode}:\n{tail}")
    with open(_marker(), "w", encoding="utf-8") as f:
        f.write("\n".join(PACKAGES) + "\n")


def ensure(say, allow_install=True):
    """
    Zaqar and redis-server installed, installing what is missing when
    ``allow_install``.

    @raise ZaqarMissing: something is missing and cannot be installed.
    """
    if shutil.which("redis-server") is None:
        if not allow_install:
            raise ZaqarMissing("redis-server is missing (apt-get install redis-server)")
        if deps.install(["redis-server"], say=say, tools=REDIS):
            raise ZaqarMissing("redis-server is missing and apt-get could not install it")
    if not installed():
        if not allow_install:
            raise ZaqarMissing(f"Zaqar is not installed in {venv_dir()} (run the zaqar "
                               f"section without --no-install once)")
        install(say)


def gunicorn_version():
    done = subprocess.run([_program("gunicorn"), "--version"], capture_output=True, text=True)
    return done.stdout.strip() or done.stderr.strip()


def config(workdir, redis_port):
    """Zaqar's settings file: no auth, the redis driver at ``redis_port``."""
    uri = f"redis://{servers.HOST}:{redis_port}"
    path = os.path.join(workdir, "zaqar.conf")
    with open(path, "w") as f:
        f.write("[DEFAULT]\nauth_strategy =\nunreliable = True\n"
                "[drivers]\ntransport = wsgi\nmessage_store = redis\n"
                "management_store = redis\n"
                f"[drivers:message_store:redis]\nuri = {uri}\n"
                f"[drivers:management_store:redis]\nuri = {uri}\n")
    return path


class ZaqarServer(servers.Server):
    """gunicorn (its master, then its worker) and redis-server: one HTTP
    process, whose CPU is counted with its worker's and redis's."""

    @property
    def count(self):
        return 1

    def pids(self):
        pids = [p.pid for p in self.processes]
        return pids + [child for pid in pids for child in _children(pid)]


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


@dataclass
class Started:
    server: ZaqarServer

    def __enter__(self):
        return self.server

    def __exit__(self, *exc_info):
        self.server.stop()


def start(workdir):
    """redis-server and Zaqar under gunicorn on free ports, answering."""
    os.makedirs(workdir, exist_ok=True)
    redis_port, port = servers.free_port(), servers.free_port()
    server = ZaqarServer("zaqar", port)
    redis_log = os.path.join(workdir, "redis.log")
    server.processes.append(servers.spawn(
        ["redis-server", "--port", str(redis_port), "--bind", servers.HOST, "--save", "",
         "--appendonly", "no", "--dir", workdir], redis_log, workdir))
    server.logs.append(redis_log)
    servers.wait_listening(server, port=redis_port)
    log = os.path.join(workdir, "zaqar.log")
    env = {**os.environ, "ZAQAR_BENCH_CONFIG": config(workdir, redis_port)}
    argv = [_program("gunicorn"), "--chdir", servers.repo_root(), "-b",
            f"{servers.HOST}:{port}", *GUNICORN, "--no-control-socket",
            "bench.zaqar_app:application"]
    server.processes.insert(0, servers.spawn(argv, log, workdir, env=env))
    server.logs.insert(0, log)
    servers.wait_answering(server, "/")
    return Started(server)


def served_apis(server, apis):
    """Those of ``apis`` under which Zaqar creates a queue (v1: no project)."""
    client = probe.Client(servers.HOST, server.port)
    served = []
    try:
        for api in apis:
            project = None if api == "v1" else "bench"
            try:
                client.request("PUT", f"/{api}/queues/bench-probe", {}, expect=(201, 204),
                               project=project)
            except probe.ProbeError:
                continue
            served.append(api)
    finally:
        client.close()
    return served
