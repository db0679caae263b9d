"""Two real daemons sharing one database, many consumers claiming and
deleting over HTTP at once: no message is held by two live claims, none is
lost, none is delivered after its deletion."""

import json
import os
import random
import signal

import treq
from twisted.internet import defer
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool

from tests.daemon import Daemon
from tests.http_support import CLIENT_ID

MESSAGES = 120
CONSUMERS = 8
HEADERS = {"Client-ID": CLIENT_ID}


class SharedDatabaseMixin:
    """Subclasses name the shared storage with ``storage_uri()``."""

    timeout = 180

    async def call(self, daemon, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        response = await treq.request(method, daemon.url + path, data=data, headers=HEADERS,
                                      timeout=30, pool=self.pool)
        content = await response.content()
        return response.code, (json.loads(content) if content else None)

    async def test_consumers_on_two_daemons(self):
        """Consumers spread over two daemons claim and delete every message
        exactly once, and never see a message another live claim holds."""
        from twisted.internet import reactor

        self.pool = HTTPConnectionPool(reactor)
        self.addCleanup(self.pool.closeCachedConnections)
        uri = self.storage_uri()
        workdir = os.path.abspath(self.mktemp())
        daemons = [Daemon(os.path.join(workdir, name), "--storage", uri).start()
                   for name in ("a", "b")]
        for daemon in daemons:
            self.addCleanup(daemon.stop, signal.SIGKILL)

        await self.call(daemons[0], "PUT", "/v1/queues/work")
        posted = []
        for start in range(0, MESSAGES, 10):
            code, doc = await self.call(daemons[start // 10 % 2], "POST",
                                        "/v1/queues/work/messages",
                                        [{"ttl": 600, "body": start + i} for i in range(10)])
            self.assertEqual(code, 201)
            posted += [href.rsplit("/", 1)[1] for href in doc["resources"]]

        held = {}        # message id -> claim id, while a consumer holds it
        delivered = []   # message ids, in the order consumers received them
        violations = []

        async def consumer(index):
            daemon = daemons[index % 2]
            idle = 0
            while idle < 3:
                code, messages = await self.call(daemon, "POST",
                                                 "/v1/queues/work/claims?limit=5",
                                                 {"ttl": 120, "grace": 60})
                if code == 204:
                    idle += 1
                    continue
                idle = 0
                for message in messages:
                    mid, claim = message["href"].split("/")[-1].split("?claim_id=")
                    if mid in held:
                        violations.append(f"{mid} held by {held[mid]} and {claim}")
                    held[mid] = claim
                    delivered.append(mid)
                random.shuffle(messages)
                for message in messages:
                    code, _ = await self.call(daemons[random.randrange(2)], "DELETE",
                                              message["href"])
                    if code != 204:
                        violations.append(f"delete {message['href']} answered {code}")
                    del held[message["href"].split("/")[-1].split("?")[0]]

        await defer.gatherResults([defer.ensureDeferred(consumer(i))
                                   for i in range(CONSUMERS)], consumeErrors=True)
        self.assertEqual(violations, [])
        self.assertEqual(sorted(delivered, key=int), sorted(posted, key=int))
        code, doc = await self.call(daemons[1], "GET", "/v1/queues/work/stats")
        self.assertEqual(doc["messages"]["total"], 0)
        for chunk in range(0, MESSAGES, 20):
            ids = ",".join(posted[chunk:chunk + 20])
            code, _ = await self.call(daemons[chunk // 20 % 2], "GET",
                                      f"/v1/queues/work/messages?ids={ids}")
            self.assertEqual(code, 204)


class SqliteSharedFileTests(SharedDatabaseMixin, unittest.TestCase):
    def storage_uri(self):
        return "sqlite:" + os.path.abspath(self.mktemp()) + ".db"


class MongoSharedDatabaseTests(SharedDatabaseMixin, unittest.TestCase):
    def storage_uri(self):
        from tests.mongodb_server import fresh_database_uri

        return fresh_database_uri(self)
