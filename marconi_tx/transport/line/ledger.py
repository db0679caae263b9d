"""The line endpoint's record of its reservations, for a restart after a crash.

A line client's reserved jobs are given back when its connection closes
(beanstalkd's rule), and at a graceful stop every connection is closed
first. After a ``kill -9`` nothing runs: the jobs would stay reserved until
their time-to-run ends. So each reservation is appended to this file (job id
and claim id) as it is made, and the next start gives back every recorded
reservation before serving.

Giving back is conditioned on the claim id (``IJobController.abandon``):
a job since deleted, released, timed out or reserved by someone else is left
alone. The file belongs to one daemon (an exclusive ``flock``): only the
process that owns the line endpoint records or gives back, never a
``--workers`` process (they have no line endpoint) nor another daemon sharing
the storage (it has a file of its own). The file is rewritten with the
reservations still held once most of its lines are stale.
"""

import fcntl
import os

#: Lines appended before the file is rewritten, at least.
COMPACT_MINIMUM = 4096


class LedgerInUse(Exception):
    """Another process holds the file."""


class ReservationLedger:
    def __init__(self, path):
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise LedgerInUse(path)
        self._lines = len(self.recorded())

    def recorded(self):
        """The (job id, claim id) pairs in the file; a line cut short by a
        crash is skipped."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self._fd, 1 << 16):
            chunks.append(chunk)
        pairs = []
        for line in b"".join(chunks).split(b"\n")[:-1]:
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit():
                pairs.append((int(parts[0]), parts[1].decode("ascii", "replace")))
        return pairs

    def add(self, job_id, claim_id, held):
        """Record a reservation; ``held`` gives the reservations still held,
        when the file is to be rewritten."""
        # Not fsynced: the record must survive the process, not the machine
        # (after a power loss the reservations end with their ttr anyway).
        os.write(self._fd, b"%d %s\n" % (job_id, claim_id.encode("ascii")))
        self._lines += 1
        if self._lines >= COMPACT_MINIMUM:
            pairs = list(held())
            if self._lines >= 2 * len(pairs):
                self.rewrite(pairs)

    def rewrite(self, pairs):
        """Keep only ``pairs`` in the file."""
        os.ftruncate(self._fd, 0)
        if pairs:
            os.write(self._fd, b"".join(b"%d %s\n" % (j, c.encode("ascii")) for j, c in pairs))
        self._lines = len(pairs)

    def close(self):
        os.close(self._fd)
