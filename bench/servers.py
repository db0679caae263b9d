"""Starting, watching and stopping the processes under load.

Every server is a child process of the harness: the ceilings
(``bench.ceiling``, ``bench.raw_ceiling``) and marconi_tx (``twistd -n marconi``, as ``make run``
starts it), each with its log in the run's work folder. Several marconi_tx
processes are one daemon run with ``--workers N``. Several ceiling processes
share one port the same way: the harness opens one ``SO_REUSEPORT``
listening socket per process, all bound to the same address, and passes each
its own through ``bench.adopt`` (the systemd socket-activation convention,
``--http systemd:domain=INET:index=0``). The kernel then spreads new
connections over the sockets by a hash of their addresses, so keep-alive
clients land about evenly on the processes. With one
socket shared by all, whichever daemon wakes first accepts every pending
connection it can (Twisted takes up to 100 a wake-up) and keeps them: two
ceiling processes loaded with 64 connections used 0.68 and 0.92 cores that
way (0.62 and 1.02 with 16), against 0.77 and 0.79 with a socket each.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from marconi_tx.workers import reuseport_socket

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerError(Exception):
    """A server did not start (its log tail is in the message)."""


def free_port():
    """A TCP port on ``HOST`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def reuseport_sockets(count, port=0):
    """
    ``count`` listening sockets on the same ``HOST`` port (``SO_REUSEPORT``).

    @return: (port, list of sockets).
    """
    sockets = []
    try:
        for _ in range(count):
            sockets.append(reuseport_socket(socket.AF_INET, HOST, port, 1024))
            port = sockets[-1].getsockname()[1]
    except OSError:
        for s in sockets:
            s.close()
        raise
    return port, sockets


def cpu_seconds(pid):
    """User + system CPU seconds used so far by process ``pid`` (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of stat(5); the split drops the first two.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tail(path, size=3000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


@dataclass
class Server:
    """One or more processes answering on ``port``."""

    name: str
    port: int
    processes: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    line_port: int = None
    workers: int = 1  # processes of one daemon run with --workers

    @property
    def url(self):
        return f"http://{HOST}:{self.port}"

    @property
    def count(self):
        """How many processes serve the port."""
        return max(len(self.processes), self.workers)

    def cpu_seconds(self):
        return sum(cpu_seconds(pid) for pid in self.pids())

    def pids(self):
        pids = [p.pid for p in self.processes]
        if self.workers > 1:
            with open(f"/proc/{pids[0]}/task/{pids[0]}/children") as f:
                pids += [int(pid) for pid in f.read().split()]
        return pids

    def alive(self):
        return all(p.poll() is None for p in self.processes)

    def stop(self, grace=10.0):
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.processes:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def wait_listening(server, timeout=30.0, port=None):
    """Return once ``server`` accepts connections; ServerError otherwise."""
    port = server.port if port is None else port
    deadline = time.monotonic() + timeout
    while True:
        for p, log in zip(server.processes, server.logs):
            if p.poll() is not None:
                raise ServerError(f"{server.name} exited with {p.returncode}:\n{tail(log)}")
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise ServerError(f"{server.name} is not listening on {port} after "
                                  f"{timeout}s:\n{tail(server.logs[0])}")
            time.sleep(0.05)


def wait_answering(server, path="/", per_process=16, timeout=30.0):
    """
    Return once every process of ``server`` answers HTTP; ServerError otherwise.

    A shared port accepts connections as soon as the harness has opened its
    sockets, before the daemons adopt them, so a TCP connect proves nothing
    there. Each of ``per_process`` connections per process is hashed to one
    daemon's socket and waits for that daemon's answer; missing a daemon
    altogether has a chance of about ``processes * exp(-per_process)``.
    """
    wait_listening(server, timeout)
    deadline = time.monotonic() + timeout
    request = (f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").encode()
    for _ in range(per_process * server.count):
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((HOST, server.port), timeout=max(left, 0.1)) as s:
                s.sendall(request)
                if not s.recv(64).startswith(b"HTTP/1.1 "):
                    raise OSError("not an HTTP answer")
        except OSError as e:
            server.stop()
            raise ServerError(f"{server.name} does not answer HTTP ({e}):\n"
                              f"{tail(server.logs[0])}")


def spawn(argv, log_path, cwd, pass_fds=(), env=None):
    """Start ``argv`` in ``cwd``, its output appended to ``log_path``."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=cwd, pass_fds=pass_fds,
                                env=env)
    finally:
        log.close()


def _start(name, argv_for, workdir, processes, cwd):
    """
    Start ``processes`` copies of ``argv_for(http_description)``.

    ``processes=None`` starts one process binding its own TCP port; a number
    starts that many sharing one port through ``reuseport_sockets``.
    """
    os.makedirs(workdir, exist_ok=True)
    if processes is None:
        port = free_port()
        server = Server(name, port)
        log = os.path.join(workdir, f"{name}.log")
        server.processes.append(spawn(argv_for(f"tcp:{port}:interface={HOST}"), log, cwd))
        server.logs.append(log)
        return server
    port, sockets = reuseport_sockets(processes)
    server = Server(name, port)
    try:
        for index, sock in enumerate(sockets):
            log = os.path.join(workdir, f"{name}-{index}.log")
            argv = [sys.executable, "-m", "bench.adopt", str(sock.fileno()),
                    *argv_for("systemd:domain=INET:index=0")]
            server.processes.append(spawn(argv, log, cwd, pass_fds=(sock.fileno(),)))
            server.logs.append(log)
    finally:
        # The daemons hold the sockets now; the harness's copies would only
        # keep the port bound after they exit.
        for sock in sockets:
            sock.close()
    return server


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


#: Ceiling name -> its module: the bare twisted.web resource, and the raw
#: Protocol writing a fixed answer (``bench.raw_ceiling``).
CEILINGS = {"ceiling": "bench.ceiling", "raw-ceiling": "bench.raw_ceiling"}


def start_ceiling(workdir, processes=None, name="ceiling"):
    """The ceiling ``name`` of ``CEILINGS`` (by default the bare twisted.web
    one, ``bench.ceiling``), listening."""
    module = CEILINGS[name]
    server = _start(name, lambda http: [sys.executable, "-m", module, http],
                    workdir, processes, repo_root())
    wait_answering(server)
    return server


def start_line_ceiling(workdir, name="line-ceiling"):
    """The bare line protocol of ``bench.line_ceiling``, listening."""
    server = _start(name, lambda tcp: [sys.executable, "-m", "bench.line_ceiling", tcp],
                    workdir, None, repo_root())
    wait_listening(server)
    return server


#: twistd run by this Python (``python -m twisted`` is the newer ``twist``
#: runner, which has no ``-n``/``--pidfile``).
TWISTD = (sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; "
          "sys.argv[0] = 'twistd'; sys.exit(run())")


def marconi_argv(http, db_path, line=None, workers=1, config=None):
    """The command line of one marconi_tx daemon on sqlite file ``db_path``
    (with the settings file ``config``, if given)."""
    argv = [*TWISTD, "-n", "--pidfile=", "marconi",
            "--http", http, "--storage", f"sqlite:{db_path}", "--workers", str(workers)]
    if config:
        argv += ["--config", config]
    if line:
        argv += ["--line", line]
    return argv


def start_marconi(workdir, db_path, processes=None, line=False, name="marconi", config=None):
    """
    marconi_tx on the sqlite file ``db_path``, listening.

    @param processes: run that many processes (``--workers``).
    @param line: also open the line endpoint on a free port; its port is
        ``server.line_port``.
    """
    line_port = free_port() if line else None
    line_description = f"tcp:{line_port}:interface={HOST}" if line_port else None
    workers = processes or 1
    server = _start(name, lambda http: marconi_argv(http, db_path, line_description, workers,
                                                    config),
                    workdir, None, repo_root())
    server.workers = workers
    server.line_port = line_port
    wait_answering(server, "/v1/health")
    if line_port:
        wait_listening(server, port=line_port)
    return server
