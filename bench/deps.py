"""The two outside programs the harness uses, installed when missing.

``wrk`` (the HTTP load generator) and ``beanstalkd`` (the reference of the
line endpoint) are Debian packages. ``make bench`` installs the missing ones
with apt-get, saying so first; when that is impossible (not root, no apt, no
network) it says why and the harness runs the sections that do not need
them. ``redis-server`` (Zaqar's storage in the ``zaqar`` section) is one
too: ``bench.zaqar`` installs it the same way, when that section runs.
"""

import os
import shutil
import subprocess

#: Program -> Debian package providing it.
TOOLS = {"wrk": "wrk", "beanstalkd": "beanstalkd"}


def missing(tools=TOOLS):
    return [name for name in tools if shutil.which(name) is None]


def install(names, say=print, run=subprocess.run, tools=TOOLS):
    """
    apt-get install the packages of ``names`` (programs named in ``tools``,
    program -> package); return the names still missing.

    Never raises: every failure is reported through ``say``.
    """
    if not names:
        return []
    packages = [tools[name] for name in names]
    if shutil.which("apt-get") is None:
        say(f"bench: {', '.join(names)} missing and apt-get is not available; "
            f"install {' '.join(packages)} by hand")
        return missing({n: tools[n] for n in names})
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and shutil.which("sudo") is None:
        say(f"bench: {', '.join(names)} missing; run as root or "
            f"`apt-get install {' '.join(packages)}` first")
        return list(names)
    say(f"bench: installing {' '.join(packages)} with apt-get (missing on this machine)")
    # A failed update is not fatal: the package lists may already be there.
    # The lock timeout waits for another apt-get running on the machine.
    for argv in ([*prefix, "apt-get", "update", "-qq"],
                 [*prefix, "apt-get", "install", "-y", "-qq",
                  "-o", "DPkg::Lock::Timeout=120", *packages]):
        try:
            done = run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except OSError as e:
            say(f"bench: {' '.join(argv)} failed: {e}")
            continue
        if done.returncode != 0:
            say(f"bench: {' '.join(argv)} exited {done.returncode}:\n"
                f"{(done.stdout or '')[-1500:]}")
    still = missing({n: tools[n] for n in names})
    if still:
        say(f"bench: still missing after apt-get: {', '.join(still)}")
    return still
