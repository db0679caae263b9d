"""The daemon's logs: JSON lines, the start-up line, reopening after rotation.

**JSON lines.** ``twistd --logger marconi_tx.logs.json_observer -n marconi``
writes one JSON object a line (twisted.logger's event format, with
``log_time``, ``log_level``, ``log_namespace`` and the event's fields) to
twistd's ``--logfile``, or to standard output when there is none.
Twisted's own ``jsonFileLogObserver`` cannot be given to ``--logger``: it
needs a file, and twistd calls a logger with no arguments.

**Reopening.** ``reopen`` opens the log files again by name (after logrotate
moved them): twistd's ``--logfile`` or this module's, and the access log.
"""

import sys
from urllib.parse import urlsplit, urlunsplit

from twisted.logger import globalLogPublisher, jsonFileLogObserver
from twisted.python import logfile

from marconi_tx import __version__

#: twistd's options (``--logfile``, ``--nodaemon``), kept by ``makeService``,
#: which twistd runs before it sets up logging.
twistd_options: dict = {}


def json_observer():
    """A twistd ``--logger``: JSON lines to twistd's ``--logfile`` (stdout
    with ``-n`` and none)."""
    name = twistd_options.get("logfile")
    if name == "-" or (not name and twistd_options.get("nodaemon", True)):
        target = sys.stdout
    else:
        target = logfile.LogFile.fromFullPath(name or "twistd.log")
    # No record separator: one JSON document a line, as log shippers read.
    return jsonFileLogObserver(target, recordSeparator="")


def log_files():
    """The LogFiles the log observers write to (twistd's ``--logfile``, or
    json_observer's)."""
    # The observers are twisted.logger FileLogObservers; twistd keeps no
    # public reference to the LogFile it gave one.
    found = []
    for observer in getattr(globalLogPublisher, "_observers", ()):
        out = getattr(observer, "_outFile", None)
        if isinstance(out, logfile.BaseLogFile):
            found.append(out)
    return found


def reopen(sites=()):
    """Open the log files and the access logs of ``sites`` again by name."""
    for log_file in log_files():
        log_file.reopen()
    for site in sites:
        if site.logPath is not None and site._logFile is not None:
            old = site.logFile
            site.logFile = site._openLogFile(site.logPath)
            old.close()


def mask_uri(uri):
    """``uri`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    credentials, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in credentials:
        return uri
    user = credentials.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def log_start(log, cfg):
    """The start-up line: version, storage (password masked), endpoints."""
    log.info("marconi_tx {version} starting: storage {storage}, http {http}, "
             "line {line}, workers {workers}",
             version=__version__, storage=mask_uri(cfg.drivers.storage),
             http=cfg.drivers.http, line=cfg.drivers.line or "off",
             workers=cfg.drivers.workers)
