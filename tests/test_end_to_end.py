"""The real ``twistd -n marconi`` over real sockets: round trip, restart,
and durability of acknowledged writes across ``kill -9``."""

import json
import os
import signal

import treq
from twisted.trial import unittest

from tests.daemon import Daemon
from tests.http_support import CLIENT_ID

HEADERS = {"Client-ID": CLIENT_ID}


class EndToEndTests(unittest.TestCase):
    timeout = 120

    def setUp(self):
        self.workdir = os.path.abspath(self.mktemp())
        self.daemon = None

    def start(self, *args):
        self.daemon = Daemon(self.workdir, *args).start()
        self.addCleanup(self.daemon.stop, signal.SIGKILL)
        return self.daemon

    async def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        response = await treq.request(method, self.daemon.url + path, data=data,
                                      headers=HEADERS, timeout=10, persistent=False)
        content = await response.content()
        return response.code, (json.loads(content) if content else None)

    async def test_round_trip_and_restart(self):
        """Create, post, list, claim and delete over real HTTP with the sqlite
        default under ./var; after SIGTERM and a restart the messages are there."""
        self.start()
        self.assertEqual((await self.call("PUT", "/v1/queues/jobs"))[0], 201)
        code, doc = await self.call("POST", "/v1/queues/jobs/messages",
                                    [{"ttl": 300, "body": {"n": i}} for i in range(3)])
        self.assertEqual(code, 201)
        ids = [href.rsplit("/", 1)[1] for href in doc["resources"]]
        code, doc = await self.call("GET", "/v1/queues/jobs/messages?echo=true")
        self.assertEqual([m["body"]["n"] for m in doc["messages"]], [0, 1, 2])
        code, claimed = await self.call("POST", "/v1/queues/jobs/claims?limit=1",
                                        {"ttl": 60, "grace": 60})
        self.assertEqual(code, 201)
        self.assertEqual((await self.call("DELETE", claimed[0]["href"]))[0], 204)
        self.assertTrue(os.path.exists(os.path.join(self.workdir, "var", "marconi.db")))

        # twistd re-raises the signal once it has shut down cleanly.
        self.assertEqual(self.daemon.stop(signal.SIGTERM), 0)  # drained, clean
        self.assertIn("Server Shut Down.", self.daemon.log())
        self.start()
        code, doc = await self.call("GET", f"/v1/queues/jobs/messages?ids={','.join(ids)}")
        self.assertEqual(sorted(m["body"]["n"] for m in doc), [1, 2])

    async def test_acknowledged_posts_survive_kill_9(self):
        """Every post the daemon acknowledged is there after a kill -9 and a
        restart on the same file."""
        self.start("--storage", "sqlite:data/q.db")
        await self.call("PUT", "/v1/queues/jobs")
        acknowledged = []
        for i in range(50):
            code, doc = await self.call("POST", "/v1/queues/jobs/messages",
                                        [{"ttl": 600, "body": i}])
            self.assertEqual(code, 201)
            acknowledged.append(doc["resources"][0].rsplit("/", 1)[1])
        self.daemon.stop(signal.SIGKILL)
        self.start("--storage", "sqlite:data/q.db")
        found = []
        for start in range(0, 50, 20):
            chunk = acknowledged[start:start + 20]
            code, doc = await self.call("GET", f"/v1/queues/jobs/messages?ids={','.join(chunk)}")
            found += [m["body"] for m in doc]
        self.assertEqual(sorted(found), list(range(50)))
