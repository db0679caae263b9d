"""The twisted.web Site of the HTTP API, refusing to buffer huge bodies."""

from io import BytesIO

from twisted.web import http, server


class BoundedBuffer(BytesIO):
    """A request body buffer that stops storing beyond ``limit`` bytes.

    The excess is read from the connection and dropped, so a huge (or
    endless chunked) body costs no memory; ``overflowed`` tells the handler,
    which answers 400.
    """

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.overflowed = False

    def write(self, data):
        room = self.limit - self.tell()
        if len(data) > room:
            self.overflowed = True
            data = data[:max(room, 0)]
        return super().write(data)


class Channel(http.HTTPChannel):
    """An HTTP connection that asks the kernel for its local address once,
    not once per request (twisted.web's requests each ask)."""

    _host = None

    def getHost(self):
        if self._host is None:
            self._host = super().getHost()
        return self._host


class QuietSite(server.Site):
    """A Site writing access log lines only to a file it was given."""

    def log(self, request):
        if self.logPath is not None:
            super().log(request)


def make_site(resource, max_body, access_log=None):
    """
    A Site over ``resource`` whose request bodies keep at most ``max_body``
    bytes, writing an access log (combined format) to the file
    ``access_log``, or none.
    """

    class BoundedRequest(server.Request):
        def gotLength(self, length):
            self.content = BoundedBuffer(max_body)

    # Bodies are JSON: parsing them as HTML form submissions is wasted work
    # (a fifth of a small POST's CPU) and would answer bad multipart itself.
    site = QuietSite(resource, requestFactory=BoundedRequest,
                     parsePOSTFormSubmission=False, logPath=access_log)
    site.noisy = False
    site.protocol = Channel
    return site
