"""systemd: socket activation through the real systemd-socket-activate, and
the unit files in etc/."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.daemon import ROOT, free_port

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
ANALYZE = shutil.which("systemd-analyze")


class SocketActivationTests(SynchronousTestCase):
    """``twistd -n marconi --http systemd:...`` serves the socket it is given."""

    def setUp(self):
        if not os.access(ACTIVATE, os.X_OK):
            raise SkipTest("systemd-socket-activate is not installed")
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)
        self.port = free_port()

    def activate(self, endpoint, *launcher_args):
        """systemd-socket-activate listening on the port, running the daemon
        (at the first connection) with ``--http endpoint``."""
        log = open(os.path.join(self.workdir, "twistd.log"), "wb")
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [ACTIVATE, "-l", f"127.0.0.1:{self.port}", *launcher_args,
             TWISTD, "-n", "--pidfile=", "marconi", "--http", endpoint,
             "--storage", f"sqlite:{self.workdir}/m.db"],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=ROOT))
        self.addCleanup(self.kill, process)
        return process

    def kill(self, process):
        if process.poll() is None:
            process.kill()
            process.wait()

    def log(self):
        with open(os.path.join(self.workdir, "twistd.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def health(self, process):
        # Refused until the launcher listens. It runs the daemon at the first
        # connection, which is answered once the daemon adopted the socket.
        url = f"http://127.0.0.1:{self.port}/v1/health"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    return response.status
            except urllib.error.URLError as e:
                refused = isinstance(e.reason, ConnectionRefusedError)
                if not refused or process.poll() is not None or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def assertServes(self, process):
        self.assertEqual(self.health(process), 204, self.log())
        process.send_signal(signal.SIGTERM)
        # A drained stop exits 0 (marconi_tx.lifecycle.Drain).
        self.assertEqual(process.wait(timeout=60), 0, self.log())

    def test_index_without_names(self):
        """``systemd:domain=INET:index=0`` works when the launcher passes no
        socket names (LISTEN_FDNAMES), as systemd-socket-activate does by
        default; Twisted alone failed with "list index out of range"."""
        self.assertServes(self.activate("systemd:domain=INET:index=0"))

    def test_name(self):
        """``systemd:domain=INET:name=NAME`` finds the socket by the name the
        socket unit gives it (FileDescriptorName, here --fdname)."""
        self.assertServes(self.activate("systemd:domain=INET:name=web", "--fdname=web"))

    def test_missing_index_is_one_line_error(self):
        """An index beyond the passed sockets stops the start-up with one line
        saying how many were passed, exit status 1, no traceback."""
        process = self.activate("systemd:domain=INET:index=1")
        # The launcher runs the daemon only once a client connects.
        with self.assertRaises(OSError):
            self.health(process)
        self.assertEqual(process.wait(timeout=60), 1)
        daemon_lines = [line for line in self.log().splitlines() if line.startswith("marconi")]
        self.assertEqual(daemon_lines, [
            "marconi: http endpoint 'systemd:domain=INET:index=1' is not valid "
            "(no socket at index 1: systemd passed 1)"])
        self.assertNotIn("Traceback", self.log())


class StartedWithoutSocketTests(SynchronousTestCase):
    """A systemd endpoint outside socket activation."""

    def test_one_line_error(self):
        """Started without a passed socket, the daemon exits 1 with one line
        on stderr that says so."""
        result = subprocess.run(
            [TWISTD, "-n", "--pidfile=", "marconi", "--http", "systemd:domain=INET:index=0",
             "--storage", "sqlite::memory:"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")})
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn("systemd passed no socket", result.stderr)


class UnitFileTests(SynchronousTestCase):
    """etc/marconi.service and etc/marconi.socket."""

    def test_units_verify(self):
        """``systemd-analyze verify`` finds nothing to report in the units
        (unknown keys, bad values), with ExecStart pointing at a real twistd."""
        if ANALYZE is None:
            raise SkipTest("systemd-analyze is not installed")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        for name in ("marconi.service", "marconi.socket"):
            with open(os.path.join(ROOT, "etc", name), encoding="utf-8") as f:
                text = f.read()
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                f.write(text.replace("/opt/marconi/bin/twistd", TWISTD))
        result = subprocess.run(
            [ANALYZE, "verify", os.path.join(folder, "marconi.socket"),
             os.path.join(folder, "marconi.service")],
            capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))
