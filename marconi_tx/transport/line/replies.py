"""The server's answers, byte for byte as beanstalkd 1.12 writes them.

Every function returns one ``bytes`` holding the whole answer (line, body
and trailing CRLF), because the protocol writes each answer in one piece:
some clients read an answer with a single ``recv``.
"""

BAD_FORMAT = b"BAD_FORMAT\r\n"
UNKNOWN_COMMAND = b"UNKNOWN_COMMAND\r\n"
EXPECTED_CRLF = b"EXPECTED_CRLF\r\n"
JOB_TOO_BIG = b"JOB_TOO_BIG\r\n"
OUT_OF_MEMORY = b"OUT_OF_MEMORY\r\n"
INTERNAL_ERROR = b"INTERNAL_ERROR\r\n"
NOT_FOUND = b"NOT_FOUND\r\n"
NOT_IGNORED = b"NOT_IGNORED\r\n"
TIMED_OUT = b"TIMED_OUT\r\n"
DEADLINE_SOON = b"DEADLINE_SOON\r\n"
DELETED = b"DELETED\r\n"
RELEASED = b"RELEASED\r\n"
BURIED = b"BURIED\r\n"
TOUCHED = b"TOUCHED\r\n"
KICKED = b"KICKED\r\n"
PAUSED = b"PAUSED\r\n"
#: The ``auth`` extension's answers (not beanstalkd's: README "The line protocol").
AUTHENTICATED = b"AUTHENTICATED\r\n"
UNAUTHORIZED = b"UNAUTHORIZED\r\n"


def inserted(job_id):
    return b"INSERTED %d\r\n" % job_id


def job(word, job_id, body):
    """``RESERVED`` or ``FOUND``: the line, the body and its CRLF."""
    return b"%s %d %d\r\n%s\r\n" % (word, job_id, len(body), body)


def kicked(count):
    return b"KICKED %d\r\n" % count


def using(tube):
    return b"USING %s\r\n" % tube.encode("ascii")


def watching(count):
    return b"WATCHING %d\r\n" % count


def yaml_dict(pairs):
    """``OK <bytes>`` and a YAML mapping (values written as given)."""
    text = "---\n" + "".join(f"{key}: {value}\n" for key, value in pairs)
    return _ok(text.encode("utf-8"))


def yaml_list(items):
    """``OK <bytes>`` and a YAML list of names."""
    text = "---\n" + "".join(f"- {item}\n" for item in items)
    return _ok(text.encode("utf-8"))


def _ok(data):
    return b"OK %d\r\n%s\r\n" % (len(data), data)
