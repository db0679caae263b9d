"""The OpenAPI 3 documents of the HTTP API, served at ``/<version>/openapi.json``.

Each API version has one file here, ``<version>.json`` (``v1.json``): adding
a version's document is adding its file. The files are the one source (also
reached from ``docs/openapi``); ``tests/test_openapi.py`` validates them and
``tests/test_fuzz.py`` fuzzes a real daemon against them.
"""

import os

from marconi_tx.transport.http.responses import encoded_body

HERE = os.path.dirname(os.path.abspath(__file__))


def versions():
    """The API versions that have a document, e.g. ``["v1"]``."""
    return sorted(name[:-len(".json")] for name in os.listdir(HERE) if name.endswith(".json"))


def path(version):
    return os.path.join(HERE, f"{version}.json")


def routes():
    """(path, {method: handler}) serving each version's document as it is on disk.

    The bytes are read once, at start-up: they are package data and never change
    while the daemon runs.
    """
    result = []
    for version in versions():
        with open(path(version), "rb") as f:
            document = f.read()

        async def serve(request, project, document=document):
            return encoded_body(request, 200, document)

        result.append((f"/{version}/openapi.json", {"GET": serve}))
    return result
