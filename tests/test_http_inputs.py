"""The request readers shared by every API version (``transport.http.inputs``)."""

import uuid

from twisted.trial import unittest

from marconi_tx.errors import ValidationError
from marconi_tx.transport.http import inputs


class HeaderRequest:
    """The one method of the request API the header readers use."""

    def __init__(self, headers):
        self.headers = headers

    def header(self, name):
        return self.headers.get(name)


class ClientUuidTests(unittest.SynchronousTestCase):
    def test_parsed_values_are_remembered_within_a_bound(self):
        """Many distinct Client-IDs each parse to their own UUID, a repeat
        answers the same UUID, and the remembered values stay bounded."""
        ids = [uuid.uuid4() for _ in range(inputs._MAX_CLIENT_IDS + 10)]
        for value in ids:
            request = HeaderRequest({b"Client-Id": str(value).encode()})
            self.assertEqual(inputs.client_uuid(request), value)
            self.assertEqual(inputs.client_uuid(request), value)
            self.assertLessEqual(len(inputs._CLIENT_IDS), inputs._MAX_CLIENT_IDS)

    def test_missing_and_malformed_are_refused_every_time(self):
        """A missing or malformed Client-ID is a 400 on every request, not
        only the first."""
        for headers in ({}, {b"Client-Id": b"not-a-uuid"}):
            for _ in range(2):
                self.assertRaises(ValidationError, inputs.client_uuid, HeaderRequest(headers))
