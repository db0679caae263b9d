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
from marconi_tx.transport.http.v1_1 import V1_1API
from marconi_tx.transport.http.v2 import V2API
from tests.http_support import ApiClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
#: The API of each version that has a document.
APIS = {"v1": V1API, "v1.1": V1_1API, "v2": V2API}


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
        """v1, v1.1 and v2 have a document, and every document is valid
        OpenAPI 3 (openapi-spec-validator)."""
        self.assertEqual(openapi.versions(), sorted(APIS))
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

    def test_paths_and_methods_are_the_routes(self):
        """Each version's document describes exactly the routes the daemon
        serves under its prefix (admin routes included: the health report,
        pools and flavors are documented with the 404 they answer without
        admin_mode and pooling), each with the methods it answers (and
        OPTIONS)."""
        settings = config.load(overrides=[("drivers", "admin_mode", "true"),
                                          ("drivers", "pooling", "true")])
        for version, api in APIS.items():
            served = {}
            for path, handlers in api(None, settings).routes() + openapi.routes():
                if path.split("/")[1] == version:
                    templated = path.replace("<", "{").replace(">", "}")
                    served[templated] = sorted(m.lower() for m in [*handlers, "OPTIONS"])
            documented = {path: sorted(m for m in item if m in METHODS)
                          for path, item in load(version)["paths"].items()}
            self.assertEqual(documented, served, version)

    def test_every_operation_answers_406_and_400(self):
        """Every operation but OPTIONS documents the Accept (406) and
        header/parameter (400) refusals every routed request can get."""
        for version in openapi.versions():
            for path, item in load(version)["paths"].items():
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


    def test_later_limits_are_the_configured_defaults(self):
        """The limits and defaults the v1.1 and v2 documents state are the
        defaults of [limits:transport] and [limits:storage]: message and
        claim bounds, page sizes, pop, the defaults used when a field is
        omitted, and (v2) the ranges of the reserved queue attributes."""
        limits, paging = config.load().transport, config.load().storage
        for version in ("v1.1", "v2"):
            doc = load(version)
            schemas = doc["components"]["schemas"]
            self.assertEqual(bounds(schemas["NewMessage"], "ttl"),
                             (limits.min_message_ttl, limits.max_message_ttl))
            self.assertEqual(bounds(schemas["NewClaim"], "ttl"),
                             (limits.min_claim_ttl, limits.max_claim_ttl))
            self.assertEqual(bounds(schemas["NewClaim"], "grace"),
                             (limits.min_claim_grace, limits.max_claim_grace))
            self.assertIn(f"default_message_ttl ({limits.default_message_ttl})",
                          schemas["NewMessage"]["properties"]["ttl"]["description"])
            self.assertIn(f"default_claim_ttl ({limits.default_claim_ttl})",
                          schemas["NewClaim"]["description"])
            self.assertIn(f"default_claim_grace ({limits.default_claim_grace})",
                          schemas["NewClaim"]["description"])
            self.assertIn(f"({limits.max_message_size})",
                          schemas["NewMessages"]["description"])
            self.assertIn(f"({limits.max_queue_metadata})",
                          schemas["Metadata"]["description"])
            q = f"/{version}/queues/{{queue_name}}"
            self.assertEqual(query_limit(doc, f"/{version}/queues", "get", "limit"),
                             (1, limits.max_queues_per_page, paging.default_queue_paging))
            self.assertEqual(query_limit(doc, f"{q}/messages", "get", "limit"),
                             (1, limits.max_messages_per_page, paging.default_message_paging))
            self.assertEqual(query_limit(doc, f"{q}/claims", "post", "limit"),
                             (1, limits.max_messages_per_claim, paging.default_claim_limit))
            self.assertEqual(query_limit(doc, f"{q}/messages", "delete", "pop"),
                             (1, limits.max_messages_per_claim, None))
            ids = doc["components"]["parameters"]["Ids"]["schema"]
            self.assertEqual(ids["maxItems"], limits.max_messages_per_page)
            reserved = schemas["Metadata"]["properties"]
            message_ttl = (limits.min_message_ttl, limits.max_message_ttl)
            self.assertEqual(bounds(schemas["Metadata"], "_default_message_ttl"), message_ttl)
            self.assertEqual(bounds(schemas["Metadata"], "_dead_letter_queue_messages_ttl"),
                             message_ttl)
            self.assertEqual(bounds(schemas["Metadata"], "_max_messages_post_size"),
                             (1, limits.max_message_size))
            self.assertEqual(bounds(schemas["Metadata"], "_default_message_delay"),
                             (0, limits.max_message_delay))
            self.assertEqual(reserved["_enable_encrypt_messages"]["type"], "boolean")
        delay = schemas["NewMessage"]["properties"]["delay"]
        self.assertEqual((delay["minimum"], delay["maximum"]), (0, limits.max_message_delay))

    def test_pool_limits_are_the_configured_defaults(self):
        """The v2 document's pool and flavor page sizes and pool URI length
        are the defaults of [limits:transport] and [limits:storage]."""
        limits, paging = config.load().transport, config.load().storage
        doc = load("v2")
        self.assertEqual(query_limit(doc, "/v2/pools", "get", "limit"),
                         (1, limits.max_pools_per_page, paging.default_pool_paging))
        self.assertEqual(query_limit(doc, "/v2/flavors", "get", "limit"),
                         (1, limits.max_flavors_per_page, paging.default_pool_paging))
        uri = doc["components"]["schemas"]["NewPool"]["properties"]["uri"]
        self.assertEqual(uri["maxLength"], limits.max_pool_uri_length)
        self.assertIn(f"({limits.max_pool_uri_length})", uri["description"])


def bounds(schema, name):
    field = schema["properties"][name]
    return field["minimum"], field["maximum"]


def query_limit(doc, path, method, name):
    """(minimum, maximum, default) of a query parameter's schema."""
    for parameter in doc["paths"][path][method]["parameters"]:
        parameter = deref(doc, parameter)
        if parameter["name"] == name:
            schema = parameter["schema"]
            return schema["minimum"], schema["maximum"], schema.get("default")
    raise AssertionError(f"{method} {path} has no {name}")


class ServedTests(unittest.TestCase):
    async def test_served_as_on_disk(self):
        """GET /<version>/openapi.json answers 200 with the package's
        document, byte for byte, as JSON, for every version and without the
        headers v1.1 and v2 require elsewhere; the Accept check applies as
        on every route."""
        driver = SqliteDriver(":memory:", task.Clock())
        await driver.open()
        self.addCleanup(driver.close)
        api = ApiClient(driver)
        for version in openapi.versions():
            answer = await api.get(f"/{version}/openapi.json", client_id=None)
            self.assertEqual(answer.code, 200, version)
            self.assertEqual(answer.headers["content-type"], "application/json; charset=utf-8")
            with open(openapi.path(version), "rb") as f:
                self.assertEqual(answer.body, f.read())
            refused = await api.get(f"/{version}/openapi.json",
                                    headers={"Accept": "application/xml"})
            self.assertEqual(refused.code, 406)
