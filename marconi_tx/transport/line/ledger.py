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
from urllib.parse import quote, unquote

#: Lines appended before the file is rewritten, at least.
COMPACT_MINIMUM = 4096


class LedgerInUse(Exception):
    """Another process holds the file."""


#: The project field of the global namespace (``quote`` never writes ``*``).
_GLOBAL = b"*"


class ReservationLedger:
    """Records are ``(job id, claim id, project)``; lines without a project
    belong to ``project``, the endpoint's own."""

    def __init__(self, path, project=None):
        self.path = path
        self.project = project
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
        """The (job id, claim id, project) records in the file; a line cut
        short by a crash is skipped."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self._fd, 1 << 16):
            chunks.append(chunk)
        records = []
        for line in b"".join(chunks).split(b"\n")[:-1]:
            parts = line.split()
            if len(parts) in (2, 3) and parts[0].isdigit():
                project = self.project if len(parts) == 2 else (
                    None if parts[2] == _GLOBAL else unquote(parts[2].decode("ascii", "replace")))
                records.append((int(parts[0]), parts[1].decode("ascii", "replace"), project))
        return records

    def _line(self, job_id, claim_id, project):
        line = b"%d %s" % (job_id, claim_id.encode("ascii"))
        if project != self.project:
            line += b" " + (_GLOBAL if project is None else quote(project, safe="").encode())
        return line + b"\n"

    def add(self, job_id, claim_id, project, held):
        """Record a reservation; ``held`` gives the reservations still held,
        when the file is to be rewritten."""
        # Not fsynced: the record must survive the process, not the machine
        # (after a power loss the reservations end with their ttr anyway).
        os.write(self._fd, self._line(job_id, claim_id, project))
        self._lines += 1
        if self._lines >= COMPACT_MINIMUM:
            records = list(held())
            if self._lines >= 2 * len(records):
                self.rewrite(records)

    def rewrite(self, records):
        """Keep only ``records`` in the file."""
        os.ftruncate(self._fd, 0)
        if records:
            os.write(self._fd, b"".join(self._line(*record) for record in records))
        self._lines = len(records)

    def close(self):
        os.close(self._fd)
