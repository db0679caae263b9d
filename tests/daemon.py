"""Running the real ``twistd marconi`` as a subprocess for end-to-end tests."""

import os
import resource
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# twistd's own entry point; ``python -m twisted`` is the different ``twist``.
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def twistd_command(*args, twistd_args=()):
    """``twistd -n`` (with ``twistd_args``, e.g. ``--logfile``) ``marconi *args``."""
    return [*TWISTD, "-n", "--pidfile=", *twistd_args, "marconi", *args]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, timeout=30.0):
    """Block until ``port`` accepts connections (the daemon is serving)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daemon exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"daemon did not listen on {port} within {timeout} s")


def wait_for_answer(port, process, timeout=30.0):
    """Block until an HTTP request to ``port`` is answered: the reactor runs
    and has its signal handlers (a listening port alone does not say so,
    and a SIGTERM before them kills the process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daemon exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.sendall(b"GET /v1/health HTTP/1.0\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"daemon did not answer on {port} within {timeout} s")


class Daemon:
    """One ``twistd -n marconi`` process on a free loopback port."""

    def __init__(self, workdir, *args, port=None, twistd_args=(), limit_files=None):
        self.workdir = workdir
        self.args = args
        self.twistd_args = twistd_args
        self.limit_files = limit_files  # (soft, hard) RLIMIT_NOFILE, or None
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        os.makedirs(workdir, exist_ok=True)

    def start(self):
        log = open(os.path.join(self.workdir, "twistd.log"), "ab")
        env = dict(os.environ, PYTHONPATH=ROOT)
        limit = self.limit_files
        self.process = subprocess.Popen(
            twistd_command("--http", f"tcp:{self.port}:interface=127.0.0.1", *self.args,
                           twistd_args=self.twistd_args),
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env,
            preexec_fn=None if limit is None
            else lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit))
        log.close()
        wait_for_answer(self.port, self.process)
        return self

    def stop(self, sig=signal.SIGTERM):
        """Send ``sig`` and wait for the exit; the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.process = None

    def log(self):
        with open(os.path.join(self.workdir, "twistd.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")
