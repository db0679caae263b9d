"""Hand an inherited listening socket to a program the systemd way.

``python -m bench.adopt FD PROGRAM [ARG...]`` moves descriptor ``FD`` to 3,
sets ``LISTEN_FDS=1``, ``LISTEN_FDNAMES=http`` and ``LISTEN_PID`` to its own pid, and execs
``PROGRAM``, which keeps that pid. A Twisted server told to listen on
``systemd:domain=INET:index=0`` then adopts the socket
(``reactor.adoptStreamPort``) instead of binding one. This is how the
harness runs several daemons on one port: it opens the sockets itself (see
``bench.servers``) and starts every daemon through this trampoline, exactly
as systemd socket activation would.
"""

import os
import sys

#: The first descriptor systemd passes (SD_LISTEN_FDS_START).
FIRST = 3
#: The name given to the socket (systemd's FileDescriptorName).
NAME = "http"


def exec_with_socket(fd, argv, environ=None):
    """Replace this process by ``argv`` with ``fd`` passed as socket 3."""
    env = dict(os.environ if environ is None else environ)
    if fd != FIRST:
        os.dup2(fd, FIRST)
        os.close(fd)
    os.set_inheritable(FIRST, True)
    env["LISTEN_FDS"] = "1"
    env["LISTEN_PID"] = str(os.getpid())
    # Twisted ignores the descriptors unless they are named, one name each.
    env["LISTEN_FDNAMES"] = NAME
    os.execvpe(argv[0], argv, env)


def main(argv):
    if len(argv) < 3 or not argv[1].isdigit():
        raise SystemExit("usage: python -m bench.adopt FD PROGRAM [ARG...]")
    exec_with_socket(int(argv[1]), argv[2:])


if __name__ == "__main__":
    main(sys.argv)
