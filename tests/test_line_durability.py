"""What a kill -9 of a real twistd leaves of the line port's work, at the
default settings (sqlite WAL, ``synchronous=NORMAL``, group commit): every
put answered ``INSERTED`` and every delete answered ``DELETED`` was
committed before its answer, so both survive; a reservation is given back
at the next start (the ledger, see test_lifecycle)."""

import signal
import socket
import sqlite3

from twisted.trial import unittest

from tests.daemon import Daemon, free_port, wait_for_port

#: Connections writing at once (so that group commit batches their writes).
CONNECTIONS = 8
#: Puts on each connection, sent in one burst.
PUTS = 50


def read_until(client, count):
    """Bytes from ``client`` until ``count`` answer lines have come."""
    answer = b""
    while answer.count(b"\r\n") < count:
        chunk = client.recv(65536)
        if not chunk:
            raise AssertionError(f"closed after {answer[-200:]!r}")
        answer += chunk
    return answer


class KillTests(unittest.TestCase):
    def start(self, workdir, line_port):
        daemon = Daemon(workdir, "--storage", "sqlite:q.db",
                        "--line", f"tcp:{line_port}:interface=127.0.0.1").start()
        wait_for_port(line_port, daemon.process)
        self.addCleanup(daemon.stop, signal.SIGKILL)
        return daemon

    def connect(self, line_port):
        client = socket.create_connection(("127.0.0.1", line_port), timeout=10)
        self.addCleanup(client.close)
        return client

    def test_answered_puts_and_deletes_survive_kill(self):
        """Jobs put (answered INSERTED) on several connections at once are
        all there after a kill -9 right after the last answer, and the jobs
        answered DELETED are gone for good."""
        workdir, line_port = self.mktemp(), free_port()
        daemon = self.start(workdir, line_port)
        clients = [self.connect(line_port) for _ in range(CONNECTIONS)]
        burst = b"".join(b"put 0 0 600 4\r\nj%03d\r\n" % n for n in range(PUTS))
        for client in clients:
            client.sendall(burst)
        put = [int(line.split()[1]) for client in clients
               for line in read_until(client, PUTS).splitlines()]
        deleted = put[::2]
        clients[0].sendall(b"".join(b"delete %d\r\n" % job_id for job_id in deleted))
        self.assertEqual(read_until(clients[0], len(deleted)),
                         b"DELETED\r\n" * len(deleted))
        daemon.stop(signal.SIGKILL)
        db = sqlite3.connect(f"{workdir}/q.db")
        self.addCleanup(db.close)
        kept = sorted(i for i, in db.execute("SELECT id FROM messages"))
        self.assertEqual(kept, sorted(set(put) - set(deleted)))
        self.start(workdir, line_port)
        client = self.connect(line_port)
        client.sendall(b"stats-tube default\r\n")
        answer = read_until(client, 2)
        self.assertIn(b"current-jobs-ready: %d\n" % len(kept), answer)
