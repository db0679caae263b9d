"""The OpenAPI documents: valid, faithful to the routes and limits, served."""

import json
import os
import subprocess
import sys

from openapi_spec_validator import validate
from twisted.internet import task
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.http import openapi
from marconi_tx.transport.http.v1 import V1API
from tests.http_support import ApiClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def load(version):
    with open(openapi.path(version), encoding="utf-8") as f:
        return json.load(f)


def deref(doc, node):
    """``node`` with its ``$ref`` (if any) followed."""
    while "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


class DocumentTests(unittest.TestCase):
    def test_every_version_has_a_valid_document(self):
        """v1 has a document, and every document is valid OpenAPI 3
        (openapi-spec-validator)."""
        self.assertIn("v1", openapi.versions())
        for version in openapi.versions():
            doc = load(version)
            self.assertTrue(doc["openapi"].startswith("3."))
            validate(doc)

    def test_docs_show_the_served_files(self):
        """docs/openapi is the package's directory, not a copy: one source."""
        for version in openapi.versions():
            self.assertTrue(os.path.samefile(
                os.path.join(ROOT, "docs", "openapi", f"{version}.json"), openapi.path(version)))

    def test_documents_are_package_data(self):
        """setup.py installs every document with the package (a wheel's daemon
        serves it): build_py copies each into the built package."""
        built = os.path.abspath(self.mktemp())
        subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", built],
                       cwd=ROOT, check=True, capture_output=True)
        for version in openapi.versions():
            self.assertTrue(os.path.isfile(os.path.join(
                built, "marconi_tx", "transport", "http", "openapi", f"{version}.json")))

    def test_v1_paths_and_methods_are_the_routes(self):
        """The v1 document describes exactly the routes the daemon serves, each
        with the methods it answers (and OPTIONS)."""
        settings = config.load()
        served = {}
        for path, handlers in V1API(None, settings).routes() + openapi.routes():
            if path.startswith("/v1"):
                templated = path.replace("<", "{").replace(">", "}")
                served[templated] = sorted(m.lower() for m in [*handlers, "OPTIONS"])
        documented = {path: sorted(m for m in item if m in METHODS)
                      for path, item in load("v1")["paths"].items()}
        self.assertEqual(documented, served)

    def test_v1_every_operation_answers_406_and_400(self):
        """Every v1 operation but OPTIONS documents the Accept (406) and
        header/parameter (400) refusals every routed request can get."""
        for path, item in load("v1")["paths"].items():
            for method in METHODS[:-1]:
                if method in item:
                    self.assertLessEqual({"400", "406"}, set(item[method]["responses"]),
                                         f"{method} {path}")

    def test_v1_limits_are_the_configured_defaults(self):
        """The limits the v1 document states are the defaults of
        [limits:transport] and [limits:storage]: changing a default means
        changing the document."""
        doc = load("v1")
        limits, paging = config.load().transport, config.load().storage
        schemas = doc["components"]["schemas"]

        def integer(schema, name):
            field = schema["properties"][name]
            return field["minimum"], field["maximum"]

        self.assertEqual(integer(schemas["NewMessage"], "ttl"),
                         (limits.min_message_ttl, limits.max_message_ttl))
        self.assertEqual(integer(schemas["NewClaim"], "ttl"),
                         (limits.min_claim_ttl, limits.max_claim_ttl))
        self.assertEqual(integer(schemas["NewClaim"], "grace"),
                         (limits.min_claim_grace, limits.max_claim_grace))
        self.assertEqual(integer(schemas["ClaimRenewal"], "ttl"),
                         (limits.min_claim_ttl, limits.max_claim_ttl))

        def limit(path, method):
            for parameter in doc["paths"][path][method]["parameters"]:
                parameter = deref(doc, parameter)
                if parameter["name"] == "limit":
                    schema = parameter["schema"]
                    return schema["minimum"], schema["maximum"], schema["default"]

        q = "/v1/queues/{queue_name}"
        self.assertEqual(limit("/v1/queues", "get"),
                         (1, limits.max_queues_per_page, paging.default_queue_paging))
        self.assertEqual(limit(f"{q}/messages", "get"),
                         (1, limits.max_messages_per_page, paging.default_message_paging))
        self.assertEqual(limit(f"{q}/claims", "post"),
                         (1, limits.max_messages_per_claim, paging.default_claim_limit))
        ids = doc["components"]["parameters"]["Ids"]["schema"]
        self.assertEqual(ids["maxItems"], limits.max_messages_per_page)
        bulk = doc["paths"][f"{q}/messages"]["delete"]["parameters"][-1]
        self.assertEqual((bulk["name"], bulk["schema"]["maxItems"]),
                         ("ids", limits.max_messages_per_page))
        for name, text in ((limits.max_queue_metadata, "metadata"),
                           (limits.max_message_size, "messages")):
            body = doc["paths"][f"{q}/{text}"]["put" if text == "metadata" else "post"]
            described = body["requestBody"]["description"] + json.dumps(
                deref(doc, body["requestBody"]["content"]["application/json"]["schema"]))
            self.assertIn(f"({name})", described)


class ServedTests(unittest.TestCase):
    async def test_served_as_on_disk(self):
        """GET /v1/openapi.json answers 200 with the package's v1.json, byte
        for byte, as JSON; the Accept check applies as on every route."""
        driver = SqliteDriver(":memory:", task.Clock())
        await driver.open()
        self.addCleanup(driver.close)
        api = ApiClient(driver)
        answer = await api.get("/v1/openapi.json")
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.headers["content-type"], "application/json; charset=utf-8")
        with open(openapi.path("v1"), "rb") as f:
            self.assertEqual(answer.body, f.read())
        refused = await api.get("/v1/openapi.json", headers={"Accept": "application/xml"})
        self.assertEqual((refused.code, refused.body), (406, b""))
