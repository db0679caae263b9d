"""Where a daemon spends its time under one load: py-spy, sampled.

``python -m bench --sections profile`` starts one daemon, runs a scenario
with wrk and, meanwhile, ``py-spy record --format raw`` on the daemon. The
raw output is one line per distinct stack, ``frame;frame;... count``; this
module folds it into per-function costs:

``self``
    samples whose innermost frame is the function (time spent in its own
    code, including C calls it makes that py-spy does not unwind);
``total``
    samples with the function anywhere on the stack (counted once a stack).

Percentages are of the samples in which the daemon was busy; idle samples
(the reactor waiting in ``epoll``) are counted apart so that how saturated
the daemon was stays visible. py-spy is not a dependency of the project:
install it into the venv (``pip install py-spy``) to use this section.
"""

import os
import re
import shutil
import subprocess
import sys

#: A frame as py-spy writes it: ``function (path/to/file.py:123)``.
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

#: Innermost frames meaning a thread was waiting for work:
# The reactor waiting for I/O, and worker threads (the sqlite scan thread)
# parked until they are given work.
_IDLE = ("EPollReactor.doPoll", "poll", "select", "Condition.wait")

#: Samples per second: enough for a few thousand samples a run, while the
#: pauses py-spy makes to read a consistent stack stay small.
RATE = 200


def find_pyspy():
    """The py-spy next to this Python (the venv), else on PATH, else None."""
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("py-spy")


#: Path parts after which a file name is shown (py-spy records full paths
#: so that the layers below can tell marconi_tx's files from others).
_ROOTS = ("/site-packages/", "/lib/python3.", "/work/main/")

#: Layer -> path fragments of its files, first match wins; the rest is "other".
LAYERS = (
    ("sqlite driver", ("marconi_tx/storage/",)),
    ("marconi http", ("marconi_tx/transport/", "marconi_tx/validation")),
    ("access log", ("twisted/logger/", "twisted/python/log.py",
                    "twisted/python/_tzhelper.py")),
    ("klein+werkzeug", ("klein/", "werkzeug/")),
    ("twisted.web", ("twisted/web/",)),
    ("email (content-type)", ("email/",)),
    ("json", ("json/",)),
    ("reactor+tcp", ("twisted/internet/", "twisted/protocols/")),
)


#: Known costs, measured inclusively (samples with a matching frame anywhere
#: on the stack): label -> fragment of the frame name.
HOT_SPOTS = (
    ("access log line (HTTPFactory.log)", "HTTPFactory.log ("),
    ("form parsing of Content-Type (_parseContentType)", "_parseContentType ("),
    ("storage calls (marconi_tx/storage)", "marconi_tx/storage/"),
    ("sqlite write transactions (SqliteDriver._commit)", "SqliteDriver._commit ("),
    ("JSON (json)", "(json/"),
    ("URL routing (werkzeug)", "(werkzeug/"),
    ("socket sends (writeSomeData)", "writeSomeData ("),
)


def short_path(path):
    for root in _ROOTS:
        index = path.rfind(root)
        if index >= 0:
            rest = path[index + len(root):]
            return rest.split("/", 1)[1] if root == "/lib/python3." and "/" in rest else rest
    return path


def frame_name(frame):
    """``function (file)``: the frame without its line number."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    return f"{match['function']} ({short_path(match['file'])})"


#: Helpers whose time belongs to their caller's layer (``untilConcludes``
#: wraps both socket sends and log file writes).
_HELPERS = ("twisted/python/util.py", "twisted/internet/defer.py")


def _owner_frame(frames):
    """The innermost frame of ``frames`` that is not a shared helper."""
    for frame in reversed(frames):
        if not any(helper in frame for helper in _HELPERS):
            return frame
    return frames[-1]


def layer(frame_name):
    for name, fragments in LAYERS:
        if any(f in frame_name for f in fragments):
            return name
    return "other"


def parse_raw(text):
    """The ``[(frames, count)]`` of py-spy's raw (collapsed) output."""
    stacks = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append(([frame_name(f) for f in stack.split(";")], int(count)))
    return stacks


def is_idle(frames):
    return bool(frames) and any(frames[-1].startswith(name + " (") for name in _IDLE)


def costs(stacks, top=15):
    """
    Fold stacks into per-function costs.

    @return: a dict with ``samples`` (all), ``busy`` (non-idle samples),
        ``self``/``total``: lists of ``[function, percent of busy]``, largest
        first, at most ``top`` each (``total`` only for marconi_tx's own
        functions: the framework frames around them are on every stack),
        ``layers``: the self time summed per layer of ``LAYERS``, and
        ``hot_spots``: the inclusive share of each of ``HOT_SPOTS``.
    """
    own, anywhere, layers = {}, {}, {}
    spots = dict.fromkeys((label for label, _ in HOT_SPOTS), 0)
    busy = total = 0
    for frames, count in stacks:
        total += count
        if is_idle(frames):
            continue
        busy += count
        for label, fragment in HOT_SPOTS:
            if any(fragment in frame for frame in frames):
                spots[label] += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for name in set(frames):
            anywhere[name] = anywhere.get(name, 0) + count
        # A frame's self time belongs to its layer, except that C calls show
        # as the self time of the Python frame making them: a layer owns
        # the innermost frame of its own files.
        owner = layer(_owner_frame(frames))
        layers[owner] = layers.get(owner, 0) + count
    if not busy:
        return {"samples": total, "busy": 0, "self": [], "total": [], "layers": [],
                "hot_spots": []}

    def ranked(table, limit):
        rows = sorted(table.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [[name, round(100.0 * count / busy, 1)] for name, count in rows]

    # Inclusive costs of the project's own functions: which handler and
    # which storage call the time goes through.
    inner = {name: count for name, count in anywhere.items() if "marconi_tx/" in name}
    return {"samples": total, "busy": busy, "self": ranked(own, top),
            "total": ranked(inner, top), "layers": ranked(layers, len(layers)),
            "hot_spots": [[label, round(100.0 * spots[label] / busy, 1)]
                          for label, _ in HOT_SPOTS]}


def record(pid, seconds, output, pyspy=None):
    """
    Start py-spy recording process ``pid`` for ``seconds`` into ``output``.

    @return: the running ``Popen``; ``finish`` collects it.
    """
    pyspy = pyspy or find_pyspy()
    return subprocess.Popen(
        [pyspy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
         "--rate", str(RATE), "--format", "raw", "--idle", "--full-filenames",
         "--output", output],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, output, timeout=60):
    """Wait for a ``record`` run; return the parsed stacks or raise RuntimeError."""
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0 or not os.path.exists(output):
        raise RuntimeError(f"py-spy failed ({proc.returncode}): {out[-1000:]}")
    with open(output, encoding="utf-8") as f:
        return parse_raw(f.read())
