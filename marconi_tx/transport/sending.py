"""Sending an answer at once rather than at the reactor's next turn.

A Twisted TCP transport's ``write`` only buffers: the bytes leave in the
next reactor turn, after the socket is registered for writing (an
``epoll_ctl``), reported writable (an ``epoll_wait``) and unregistered again
(another ``epoll_ctl``). For a short answer on an idle connection that is
three system calls and a reactor turn more than the one ``send`` it needs.
Both endpoints answer through ``send_now``.
"""

from twisted.internet import tcp


def send_now(transport, data):
    """
    Write ``data`` to ``transport``: on the socket now when it is a plain
    TCP connection with nothing else waiting to be sent (what the socket
    does not take, and everything in any other case, goes through
    ``transport.write`` in order).
    """
    if (type(transport) is tcp.Server and transport.connected
            and not transport.disconnecting and not transport._tempDataLen
            and transport.offset == len(transport.dataBuffer)):
        try:
            sent = transport.socket.send(data)
        except OSError:  # full, or gone: the transport finds out
            sent = 0
        data = data[sent:]
    if data:
        transport.write(data)
