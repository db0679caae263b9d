"""The daemon's logs: JSON lines, the start-up line, masked passwords."""

import json
import os

from twisted.logger import Logger, formatEvent
from twisted.trial import unittest

from marconi_tx import __version__, config, logs
from tests.daemon import Daemon


class MaskTests(unittest.SynchronousTestCase):
    def test_password_masked(self):
        """The password of a URI is replaced by ***; user, host, port and
        path stay."""
        self.assertEqual(logs.mask_uri("mongodb://queue:s3cr:et@db.example:27017/marconi"),
                         "mongodb://queue:***@db.example:27017/marconi")

    def test_without_password_unchanged(self):
        """URIs without a password are shown as they are."""
        for uri in ("mongodb://db:27017/marconi", "mongodb://queue@db/marconi",
                    "sqlite:var/marconi.db", "sqlite::memory:"):
            self.assertEqual(logs.mask_uri(uri), uri)

    def test_start_line(self):
        """The start-up event names the version, the masked storage URI and
        every endpoint, as text and as fields."""
        events = []
        cfg = config.load(overrides=[("drivers", "storage", "mongodb://u:pw@h/db"),
                                     ("drivers", "line", "tcp:11300")])
        logs.log_start(Logger(observer=events.append), cfg)
        [event] = events
        self.assertEqual(
            formatEvent(event),
            f"marconi_tx {__version__} starting: storage mongodb://u:***@h/db, "
            "http tcp:8888:interface=127.0.0.1, line tcp:11300, workers 1")
        self.assertEqual(event["storage"], "mongodb://u:***@h/db")


class JsonLogTests(unittest.TestCase):
    def test_json_lines(self):
        """twistd --logger marconi_tx.logs.json_observer writes one JSON
        document a line to the --logfile, the start-up event among them."""
        workdir = self.mktemp()
        daemon = Daemon(workdir, "--storage", "sqlite:q.db",
                        twistd_args=("--logger", "marconi_tx.logs.json_observer",
                                     "--logfile", "marconi.json")).start()
        self.assertEqual(daemon.stop(), 0)
        with open(os.path.join(workdir, "marconi.json")) as f:
            events = [json.loads(line) for line in f]
        [start] = [e for e in events if e.get("log_format", "").startswith("marconi_tx ")]
        self.assertEqual(start["version"], __version__)
        self.assertEqual(start["storage"], "sqlite:q.db")
        self.assertIn("log_time", start)
