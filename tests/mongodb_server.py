"""
A real MongoDB-wire server for the tests: ``secantusd-py`` (SecantusDB).

``shared_uri()`` starts one server per test process, lazily, on a free
loopback port with a temporary storage directory, and stops it when the
interpreter exits; set ``MARCONI_TEST_MONGODB_URI`` to use a server of your
own instead (e.g. a real mongod). ``fresh_database_uri(case)`` gives each
test its own database, dropped when the test ends.

``DedicatedServer`` is a separate server process on its own port and
storage directory, for tests that stop and restart it.

``fault_database_uri(case)`` is the same for the fault tests: a second
shared server, started as the single-node replica set ``secantus`` with
``--enable-test-commands`` (``configureFailPoint``), reached through a
``replicaSet=secantus`` URI. With ``MARCONI_TEST_MONGODB_URI`` set it is
that server, and the tests skip if it refuses test commands.

When no server can be started the tests skip with the reason, except when
the ``CI`` environment variable is set: there they fail, so a broken set-up
never passes as a green run.
"""

import atexit
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SkipTest

URI_ENV = "MARCONI_TEST_MONGODB_URI"
#: Seconds a starting server may take before it is declared broken.
START_TIMEOUT = 30.0


class ServerUnavailable(Exception):
    """No MongoDB-wire server could be started or reached (in CI: a failure)."""


def unavailable(reason):
    """Skip the calling test, or fail it when running in CI."""
    if os.environ.get("CI"):
        raise ServerUnavailable(reason)
    raise SkipTest(reason)


def _executable():
    beside = os.path.join(os.path.dirname(sys.executable), "secantusd-py")
    return beside if os.access(beside, os.X_OK) else shutil.which("secantusd-py")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Ask Linux to terminate the server if the test process dies (kill -9)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


#: The replica set name a server started without ``--standalone`` reports.
REPLICA_SET = "secantus"


class DedicatedServer:
    """One ``secantusd-py`` process; keeps its port and data across restarts.

    @param replica_set: run as the single-node replica set ``REPLICA_SET``
        (its ``uri`` names it), not ``--standalone``.
    @param test_commands: enable ``configureFailPoint``.
    """

    def __init__(self, replica_set=False, test_commands=False):
        self.directory = tempfile.mkdtemp(prefix="marconi-secantus-")
        self.port = None
        self.process = None
        self._log = None
        self.replica_set = replica_set
        self.test_commands = test_commands

    @property
    def uri(self):
        base = f"mongodb://127.0.0.1:{self.port}"
        return f"{base}/?replicaSet={REPLICA_SET}" if self.replica_set else base

    def start(self):
        """Start (or restart, on the same port) and wait until it accepts
        connections; ServerUnavailable if it does not."""
        executable = _executable()
        if executable is None:
            raise ServerUnavailable("secantusd-py is not installed (pip install secantusdb)")
        if self.port is None:
            self.port = _free_port()
        log_path = os.path.join(self.directory, "server.log")
        self._log = open(log_path, "ab")
        flags = [] if self.replica_set else ["--standalone"]
        if self.test_commands:
            flags.append("--enable-test-commands")
        self.process = subprocess.Popen(
            [executable, "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", os.path.join(self.directory, "data"),
             *flags, "--log-level", "WARNING"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        with open(log_path, "rb") as f:
            tail = f.read()[-2000:].decode("utf-8", "replace")
        raise ServerUnavailable(
            f"secantusd-py did not accept connections on port {self.port}; log:\n{tail}")

    def stop(self):
        """Kill the process, as a crash would (its data stays for a restart:
        acknowledged journaled writes must survive). SIGKILL also avoids a
        slow graceful shutdown."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def destroy(self):
        """Stop and remove the data."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


_names = itertools.count(1)


class _SharedServer:
    """A ``DedicatedServer`` started on first use, for the whole run."""

    def __init__(self, **options):
        self.options = options
        self.server = None
        self.failure = None

    def uri(self):
        """Its URI; skips or fails (in CI) the calling test if it cannot
        be started."""
        if self.failure is None and self.server is None:
            server = DedicatedServer(**self.options)
            try:
                server.start()
            except ServerUnavailable as e:
                server.destroy()
                self.failure = str(e)
            else:
                self.server = server
                atexit.register(server.destroy)
        if self.failure is not None:
            unavailable(self.failure)
        return self.server.uri


_shared = _SharedServer()
_faults = _SharedServer(replica_set=True, test_commands=True)


def shared_uri():
    """The URI of this run's server (``mongodb://HOST:PORT``), started on
    first use; skips or fails (in CI) the calling test if impossible."""
    if os.environ.get(URI_ENV):
        return os.environ[URI_ENV]
    return _shared.uri()


def fault_uri():
    """The URI of this run's fault server (a replica set with fail points),
    started on first use; with ``MARCONI_TEST_MONGODB_URI`` that server,
    skipping the calling test if it has no test commands."""
    if not os.environ.get(URI_ENV):
        return _faults.uri()
    uri = os.environ[URI_ENV]
    if not accepts_fail_points(uri):
        raise SkipTest(f"{URI_ENV} names a server without test commands "
                       "(configureFailPoint); start it with them to run the fault tests")
    return uri


def accepts_fail_points(uri):
    """Whether the server at ``uri`` runs ``configureFailPoint``."""
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("configureFailPoint", "failCommand", mode="off")
    except pymongo.errors.OperationFailure:
        return False
    finally:
        client.close()
    return True


def fresh_database_name():
    """A database name no other test of any running process uses."""
    return f"marconi_test_{os.getpid()}_{next(_names)}"


def drop_database(uri, name):
    """Drop a test database (best effort: the server may be gone)."""
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000)
    try:
        client.drop_database(name)
    except pymongo.errors.PyMongoError:
        pass
    finally:
        client.close()


def with_database(uri, name):
    """``uri`` (``mongodb://HOSTS[/DB][?OPTIONS]``) naming database ``name``."""
    base, _, options = uri.partition("?")
    scheme, _, rest = base.partition("://")
    hosts = rest.split("/", 1)[0]
    return f"{scheme}://{hosts}/{name}" + (f"?{options}" if options else "")


def fresh_database_uri(case):
    """A URI naming a new database on the shared server, dropped after the
    test ``case``."""
    name = fresh_database_name()
    uri = with_database(shared_uri(), name)
    case.addCleanup(drop_database, uri, name)
    return uri


def fault_database_uri(case):
    """``fresh_database_uri`` on the fault server (``fault_uri``)."""
    name = fresh_database_name()
    uri = with_database(fault_uri(), name)
    case.addCleanup(drop_database, uri, name)
    return uri


def dedicated_server(case, **options):
    """A started ``DedicatedServer(**options)`` for ``case`` alone,
    destroyed after it."""
    server = DedicatedServer(**options)
    case.addCleanup(server.destroy)
    try:
        server.start()
    except ServerUnavailable as e:
        unavailable(str(e))
    return server
