"""Delivery survives a ``kill -9``: the real ``twistd marconi`` delivering
to a real receiver in the test process."""

import json
import os
import signal

import treq
from twisted.trial import unittest

from tests.daemon import Daemon
from tests.http_support import CLIENT_ID
from tests.webhook_receiver import start_receiver

HEADERS = {"Client-ID": CLIENT_ID, "X-Project-ID": "p"}


class RestartTests(unittest.TestCase):
    timeout = 120

    async def call(self, daemon, method, path, body=None):
        response = await treq.request(method, daemon.url + path,
                                      data=json.dumps(body).encode(), headers=HEADERS,
                                      timeout=10, persistent=False)
        return response.code, json.loads(await response.content() or b"null")

    async def test_message_posted_before_kill_9_delivered_after_restart(self):
        """A message posted while the subscriber hangs, the daemon then
        killed with SIGKILL, is delivered by the restarted daemon once the
        subscriber answers."""
        receiver, url = await start_receiver(self)
        receiver.mode = "hang"
        workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        conf = os.path.join(workdir, "marconi.conf")
        with open(conf, "w") as f:
            f.write("[notification]\nsweep_interval = 0.1\n")
        daemon = Daemon(workdir, "--config", conf).start()
        self.addCleanup(daemon.stop, signal.SIGKILL)
        code, doc = await self.call(daemon, "POST", "/v2/queues/jobs/subscriptions",
                                    {"subscriber": url})
        self.assertEqual(code, 201)
        code, _ = await self.call(daemon, "POST", "/v2/queues/jobs/messages",
                                  {"messages": [{"ttl": 300, "body": "survivor"}]})
        self.assertEqual(code, 201)
        await receiver.received(1)  # the delivery is under way, unanswered
        self.assertEqual(daemon.stop(signal.SIGKILL), -signal.SIGKILL)
        receiver.mode = 200
        daemon.start()
        await receiver.received(2)
        self.assertEqual([b["body"] for b in receiver.bodies()], ["survivor", "survivor"])
