"""``GET /``: the versions document of api-v2.md §1.1, so that version
discovery (openstacksdk, python-zaqarclient) finds v2.

It lists v1 and v1.1 as ``DEPRECATED`` and v2 as ``CURRENT`` (as the last
upstream releases that served all three did), with the ``updated`` stamps
and media types upstream gave. No header is required and none is checked:
the document is public and the same for every client (an ``Accept`` header
not admitting JSON still gets it). The ``self`` links are server-relative,
as every href of this API.
"""

from marconi_tx.transport.http import responses


def _version(version_id, status, updated, media):
    return {"id": version_id, "status": status, "updated": updated,
            "media-types": [{"base": "application/json",
                             "type": f"application/vnd.openstack.messaging-{media}+json"}],
            "links": [{"href": f"/v{version_id}/", "rel": "self"}]}


DOCUMENT = responses.dump({"versions": [
    _version("1", "DEPRECATED", "2014-9-11T17:47:05Z", "v1"),
    _version("1.1", "DEPRECATED", "2016-7-29T02:22:47Z", "v1_1"),
    _version("2", "CURRENT", "2014-9-24T04:06:47Z", "v2"),
]})


class Versions:
    """The root of the API: one route, no checks."""

    prefix = "/"
    error_answers = responses.JSON_ERROR_ANSWERS
    json_errors = True

    def checks(self, request, params):
        return None

    def routes(self):
        return [("/", {"GET": self.versions})]

    async def versions(self, request, project):
        return responses.encoded_body(request, 300, DOCUMENT)
