"""Schemathesis against a real ``twistd marconi``: every operation of every
OpenAPI document, valid and invalid requests, no 5xx and no answer the
document does not describe.

``MARCONI_FUZZ_EXAMPLES`` sets the examples per operation and generation mode
(default 25). Generation is derandomized, so a run is reproducible; the
requests and 5xx seen per operation are written to
``_trial_temp/fuzz-<version>-<driver>.txt``.
"""

import json
import os
import signal
import uuid

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twisted.trial import unittest

from marconi_tx.transport.http import openapi
from marconi_tx.transport.http.v2 import PATCH_TYPE
from tests.daemon import Daemon

EXAMPLES = int(os.environ.get("MARCONI_FUZZ_EXAMPLES", "25"))
#: Schemathesis' own configuration, not a schemathesis.toml found around.
CONFIG = schemathesis.Config.from_dict({"checks": {"not_a_server_error": {
    "expected-statuses": ["2xx", "3xx", "4xx"]}}})
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
#: The queue (global namespace) holding real messages and a claim, so that
#: generated requests also reach existing resources and their 200 answers.
QUEUE = "fuzz"
PROJECT = "fuzz-project"
CLIENT = str(uuid.UUID(int=1))


@schemathesis.serializer(PATCH_TYPE)
def json_patch(context, value):
    """v2's queue PATCH body: JSON under its own media type."""
    return json.dumps(value).encode("utf-8")


class Seeded:
    """Real resources of the daemon: messages of ``QUEUE`` and a claim of
    some, in the global namespace (v1) or in ``PROJECT`` (the versions that
    require X-Project-ID). They are made over v1: every version sees them."""

    def __init__(self, session, url, version="v1"):
        self.session, self.url = session, url
        self.project = None if version == "v1" else PROJECT
        self.message_ids, self.claim_id = [], None

    def refresh(self):
        """Post fresh messages and claim two: an earlier operation may have
        deleted or claimed the previous ones."""
        base = f"{self.url}/v1/queues/{QUEUE}"
        headers = {"Client-ID": CLIENT}
        if self.project is not None:
            headers["X-Project-ID"] = self.project
        self.session.put(base, headers=headers).raise_for_status()
        posted = self.session.post(f"{base}/messages", headers=headers, data=json.dumps(
            [{"ttl": 600, "body": {"n": n, "text": "é"}} for n in range(4)]))
        posted.raise_for_status()
        self.message_ids = [r.rsplit("/", 1)[1] for r in posted.json()["resources"]]
        claimed = self.session.post(f"{base}/claims?limit=2", headers=headers,
                                    data=json.dumps({"ttl": 600, "grace": 60}))
        self.claim_id = (claimed.headers["Location"].rsplit("/", 1)[1]
                         if claimed.status_code == 201 else "none")

    def aim(self, case, pick):
        """Point ``case`` at the seeded resources (its other fields stay generated)."""
        params = case.path_parameters or {}
        if "queue_name" in params:
            params["queue_name"] = QUEUE
            if self.project is None:
                (case.headers or {}).pop("X-Project-ID", None)
            else:
                case.headers = {**(case.headers or {}), "X-Project-ID": self.project,
                                "Client-ID": CLIENT}
        if "message_id" in params:
            params["message_id"] = self.message_ids[pick % len(self.message_ids)]
        if "claim_id" in params:
            params["claim_id"] = self.claim_id
        if case.query and "ids" in case.query:
            case.query["ids"] = self.message_ids[:pick % len(self.message_ids) + 1]


class Tally:
    """Requests sent and 5xx seen, per operation."""

    def __init__(self):
        self.rows = {}

    def count(self, label, status):
        row = self.rows.setdefault(label, [0, 0])
        row[0] += 1
        row[1] += status >= 500

    def total(self):
        return [sum(row[i] for row in self.rows.values()) for i in (0, 1)]

    def report(self):
        lines = [f"{sent:6d} {errors:4d}  {label}"
                 for label, (sent, errors) in sorted(self.rows.items())]
        sent, errors = self.total()
        return "\n".join(["  sent  5xx  operation", *lines, f"{sent:6d} {errors:4d}  total"])


def fuzz(schema, url, seeded, tally, only=None):
    """Run every operation (or those labelled in ``only``): schemathesis'
    coverage cases (boundary values, valid and invalid), then ``EXAMPLES``
    generated cases in each generation mode. The failures, as text."""
    failures = []
    session = seeded.session
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]

    def check(operation, case):
        response = case.call(base_url=url, session=session, timeout=30)
        tally.count(operation.label, response.status_code)
        case.validate_response(response, checks=CHECKS,
                               transport_kwargs={"base_url": url, "session": session})

    for result in schema.get_all_operations():
        operation = result.ok()
        if only is not None and operation.label not in only:
            continue
        seeded.refresh()
        coverage = schema.iter_coverage_cases(
            operation, generation_modes=modes,
            generation_config=schema.config.generation_for(operation=operation, phase="coverage"))
        for case in coverage:
            try:
                check(operation, case)
            except (Exception, FailureGroup) as e:
                failures.append(f"{operation.label} (coverage): {e}")
                break  # one is enough to report; the rest are likely the same
        for mode in modes:
            seeded.refresh()
            cases = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans(),
                              st.integers(0, 7))

            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck), print_blob=False)
            @given(cases)
            def run(generated):
                case, aimed, pick = generated
                if aimed:
                    seeded.aim(case, pick)
                check(operation, case)  # noqa: B023 (run() runs in this iteration)

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid: an operation without parameters
            except (Exception, FailureGroup) as e:
                failures.append(f"{operation.label} ({mode.value}): {e}")
    return failures


def load(session, url, version):
    """The document the daemon serves for ``version``."""
    served = session.get(f"{url}/{version}/openapi.json")
    served.raise_for_status()
    return served.json()


class FuzzMixin:
    """The fuzz against a daemon on the storage of ``storage_uri()``."""

    timeout = 900

    def setUp(self):
        workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        settings = os.path.join(workdir, "marconi.conf")
        with open(settings, "w") as f:
            # A fuzzed ?wait=N on an empty queue waits N seconds: at most 1
            # here (the documents allow 20; beyond 1 is a documented 400).
            f.write("[limits:transport]\nmax_claim_wait = 1\n")
        self.daemon = Daemon(workdir, "--storage", self.storage_uri(),
                             "--config", settings).start()
        self.addCleanup(self.daemon.stop, signal.SIGKILL)
        self.session = requests.Session()
        self.addCleanup(self.session.close)

    def schema(self, doc):
        return schemathesis.openapi.from_dict(doc, config=CONFIG)

    def test_every_document_against_twistd(self):
        """Every operation of every served API version's document, fuzzed with
        valid and invalid requests over HTTP against ``twistd marconi``: no
        5xx, and every status, Content-Type, header and body is one the
        document describes."""
        url, failures = self.daemon.url, []
        for version in openapi.versions():
            tally = Tally()
            failures += fuzz(self.schema(load(self.session, url, version)), url,
                             Seeded(self.session, url, version), tally)
            with open(f"fuzz-{version}-{self.driver}.txt", "w") as f:
                f.write(tally.report() + "\n")
            self.assertGreaterEqual(tally.total()[0], EXAMPLES * len(tally.rows))
        self.assertEqual(failures, [], "\n\n".join(failures))

    def test_a_wrong_document_fails(self):
        """The fuzz reports a document that does not match the answers: an
        undocumented status (GET of an unknown message is a 404) and a body
        breaking its schema (a message's age is never negative)."""
        url = self.daemon.url
        doc = load(self.session, url, "v1")
        path = "/v1/queues/{queue_name}/messages/{message_id}"
        del doc["paths"][path]["get"]["responses"]["404"]
        doc["components"]["schemas"]["Message"]["properties"]["age"]["maximum"] = -1
        failures = fuzz(self.schema(doc), url, Seeded(self.session, url), Tally(),
                        only={f"GET {path}"})
        text = "\n".join(failures)
        self.assertIn("Undocumented status code", text)
        self.assertIn("Response violates schema", text)


class SqliteFuzzTests(FuzzMixin, unittest.TestCase):
    driver = "sqlite"

    def storage_uri(self):
        return "sqlite:" + os.path.abspath(self.mktemp()) + ".db"


class MongoFuzzTests(FuzzMixin, unittest.TestCase):
    """The same on MongoDB (the MongoDB-wire test server): other ids, other
    failures."""

    driver = "mongodb"

    def storage_uri(self):
        from tests.mongodb_server import fresh_database_uri

        return fresh_database_uri(self)


class PooledAdminFuzzTests(unittest.TestCase):
    """The v2 pool, flavor and health operations, fuzzed against a daemon
    with admin_mode and pooling on (sqlite catalog, one sqlite pool): the
    other fuzz tests only see their 404."""

    timeout = 900

    def setUp(self):
        self.workdir = workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        settings = os.path.join(workdir, "marconi.conf")
        with open(settings, "w") as f:
            f.write("[drivers]\nadmin_mode = true\npooling = true\n"
                    f"storage = sqlite:{os.path.join(workdir, 'catalog.db')}\n")
        self.daemon = Daemon(workdir, "--config", settings).start()
        self.addCleanup(self.daemon.stop, signal.SIGKILL)
        self.session = requests.Session()
        self.addCleanup(self.session.close)

    def test_pool_admin_against_twistd(self):
        """Every pool, flavor and health operation of the v2 document, with
        valid and invalid requests: no 5xx, every answer as documented."""
        url = self.daemon.url
        seeded = self.session.put(
            f"{url}/v2/pools/seed", headers={"Client-ID": CLIENT, "X-Project-ID": PROJECT},
            json={"uri": f"sqlite:{os.path.join(self.workdir, 'seed.db')}", "weight": 1})
        self.assertEqual(seeded.status_code, 201, seeded.text)
        schema = schemathesis.openapi.from_dict(load(self.session, url, "v2"), config=CONFIG)
        labels = {result.ok().label for result in schema.get_all_operations()}
        only = {label for label in labels
                if label.split()[1].startswith(("/v2/pools", "/v2/flavors", "/v2/health"))}
        tally = Tally()
        failures = fuzz(schema, url, Seeded(self.session, url, "v2"), tally, only)
        with open("fuzz-v2-pooled.txt", "w") as f:
            f.write(tally.report() + "\n")
        self.assertEqual(len(tally.rows), len(only))
        self.assertGreaterEqual(tally.total()[0], EXAMPLES * len(tally.rows))
        self.assertEqual(failures, [], "\n\n".join(failures))
