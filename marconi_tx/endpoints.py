"""Listening endpoints from strports descriptions, with marconi's defaults.

* A ``unix:`` socket is created with mode 0600 unless the description gives
  ``mode=``: Twisted's default, 0666, would let every local user at the
  queues.
* ``systemd:domain=INET:index=N`` also works when the launcher passes
  ``LISTEN_FDS`` without ``LISTEN_FDNAMES`` (``systemd-socket-activate``
  without ``--fdname``): Twisted then ignores every inherited socket and the
  start-up failed with "list index out of range". Sockets Twisted found are
  used as Twisted found them (``--workers`` hands its workers theirs so). A
  socket that was not passed is a one-line error saying what was.
"""

import ipaddress
import os
import socket

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import endpoints
from twisted.python.systemd import ListenFDs

#: The mode (octal) of a unix socket whose description names none.
UNIX_MODE = "600"


def server(reactor, description):
    """The IStreamServerEndpoint of a strports ``description``; ValueError
    (or TypeError, from Twisted's parsers) when it is not valid."""
    kind, _, rest = description.partition(":")
    fields = _fields(rest)
    if kind == "systemd":
        positional = [_unescape(f) for f in fields if "=" not in f]
        named = dict(_unescape(f).split("=", 1) for f in fields if "=" in f)
        try:
            return _systemd(reactor, description, *positional, **named)
        except TypeError:
            raise ValueError("use systemd:domain=INET:index=N or systemd:domain=INET:name=NAME")
    if kind == "unix" and not any(f.startswith("mode=") for f in fields):
        description += f":mode={UNIX_MODE}"
    return endpoints.serverFromString(reactor, description)


def is_local(description):
    """True if the strports ``description`` listens on a unix socket or on
    loopback addresses only (tcp, tcp6, ssl with a loopback ``interface``);
    False for every other address and for what cannot be told (systemd)."""
    kind, _, rest = description.partition(":")
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False
    fields = [_unescape(f) for f in _fields(rest)]
    interface = next((f[len("interface="):] for f in fields if f.startswith("interface=")), "")
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface.strip("[]")).is_loopback
    except ValueError:  # none given: every interface
        return False


def service(reactor, description, factory):
    """A service listening on ``description``: strports.service with these defaults."""
    svc = StreamServerEndpointService(server(reactor, description), factory)
    # As strports.service does: a port that cannot be bound fails the start-up.
    svc._raiseSynchronously = True
    return svc


def _fields(text):
    """The colon-separated fields of a description, escapes kept."""
    fields, current, chars = [], [], iter(text)
    for char in chars:
        if char == "\\":
            current.append(char + next(chars, ""))
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _unescape(field):
    out, chars = [], iter(field)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def _systemd(reactor, description, domain, index=None, name=None):
    if (index is None) == (name is None):
        raise TypeError("exactly one of index and name")
    family = getattr(socket, "AF_" + domain, None)
    if family is None:
        raise ValueError(f"unknown socket domain {domain!r} (use INET, INET6 or UNIX)")
    try:
        # The sockets Twisted took from os.environ when it was imported.
        return endpoints.serverFromString(reactor, description)
    except (IndexError, KeyError, ValueError):
        pass
    passed = passed_sockets()
    if not passed.inheritedDescriptors():
        raise ValueError("systemd passed no socket (LISTEN_FDS is unset or for another "
                         "process: run twistd -n from a socket unit or systemd-socket-activate)")
    if index is not None:
        descriptors = passed.inheritedDescriptors()
        if not index.isdigit() or int(index) >= len(descriptors):
            raise ValueError(f"no socket at index {index}: systemd passed {len(descriptors)}")
        fileno = descriptors[int(index)]
    else:
        by_name = passed.inheritedNamedDescriptors()
        if name not in by_name:
            raise ValueError(f"no socket named {name!r}: systemd passed {', '.join(by_name)}")
        fileno = by_name[name]
    return endpoints.AdoptedStreamServerEndpoint(reactor, fileno, family)


def passed_sockets(environ=None):
    """The sockets systemd (or a launcher like it) passed to this process.

    Without ``LISTEN_FDNAMES`` the sockets are named ``unknown``, as
    sd_listen_fds_with_names(3) names them, instead of being ignored.

    @param environ: the launcher's environment (default: the one this
        process started with).
    """
    environ = dict(_start_environ() if environ is None else environ)
    count = environ.get("LISTEN_FDS", "")
    if "LISTEN_FDNAMES" not in environ and count.isdigit():
        environ["LISTEN_FDNAMES"] = ":".join(["unknown"] * int(count))
    return ListenFDs.fromEnvironment(environ)


def _start_environ():
    # Importing twisted.internet.endpoints deletes LISTEN_PID and LISTEN_FDS
    # from os.environ (even when it then ignores the sockets for want of
    # LISTEN_FDNAMES); the environment the process started with keeps them.
    try:
        with open("/proc/self/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return os.environ
    return dict(os.fsdecode(e).split("=", 1) for e in entries if b"=" in e)
