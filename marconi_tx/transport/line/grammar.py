"""Command lines of the beanstalkd 1.12 protocol, parsed as beanstalkd does.

beanstalkd recognises a command by its prefix and then reads its arguments
with ``strtoul``-like rules that differ from command to command; clients and
their tests depend on the exact answers, so the rules here follow the real
server (each was checked against beanstalkd 1.12): ids and the numbers of
``put``, ``release``, ``bury`` and ``pause-tube`` are digits only, in range,
separated by spaces, with nothing after them; ``kick`` and
``reserve-with-timeout`` take a C integer prefix and ignore the rest.
"""

import re

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
#: The longest tube name beanstalkd accepts.
MAX_TUBE_NAME = 200

_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+/;.$_()")
_NUMBERS = {n: re.compile(rb" *(\d+)" + rb" +(\d+)" * (n - 1) + rb"\Z") for n in (1, 2, 3, 4)}
# strtoul/strtol: C white space, a sign, digits; whatever follows is ignored.
_C_INTEGER = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(\d*)")
_NAME_PREFIX = re.compile(rb" *([A-Za-z0-9+/;.$_()-]*)")


class BadFormat(Exception):
    """The line is a known command with malformed arguments."""


class UnknownCommand(Exception):
    """The line names no command."""


def _numbers(raw, limits):
    match = _NUMBERS[len(limits)].match(raw)
    if match is None:
        raise BadFormat()
    values = tuple(int(v) for v in match.groups())
    if any(v > limit for v, limit in zip(values, limits)):
        raise BadFormat()
    return values


def _name(raw):
    """A tube name as beanstalkd accepts it (a str), else BadFormat."""
    if not 0 < len(raw) <= MAX_TUBE_NAME or raw[0] == 0x2D or not _NAME_CHARS.issuperset(raw):
        raise BadFormat()
    return raw.decode("ascii")


def _exact(raw):
    if raw:
        raise BadFormat()
    return ()


def _put(raw):
    return _numbers(raw, (U32_MAX, U32_MAX, U32_MAX, U32_MAX))


def _one_id(raw):
    return _numbers(raw, (U64_MAX,))


def _release(raw):
    return _numbers(raw, (U64_MAX, U32_MAX, U32_MAX))


def _bury(raw):
    return _numbers(raw, (U64_MAX, U32_MAX))


def _c_integer(raw, empty_ok):
    sign, digits = _C_INTEGER.match(raw).groups()
    if not digits:
        if empty_ok:
            return 0
        raise BadFormat()
    value = int(digits)
    return -value if sign == b"-" else value


def _kick(raw):
    # strtoul into an unsigned int: "-1" wraps to 2**32-1, 2**32 to 0.
    value = _c_integer(raw, empty_ok=False)
    if abs(value) > U64_MAX:
        raise BadFormat()
    return (value % 2**64 % 2**32,)


def _reserve_with_timeout(raw):
    # strtol into an int: no digits is 0, 2**32 wraps to 0, negative waits
    # for ever.
    value = _c_integer(raw, empty_ok=True)
    if not -(2**63) <= value < 2**63:
        raise BadFormat()
    return ((value + 2**31) % 2**32 - 2**31,)


def _one_name(raw):
    return (_name(raw),)


def _pause_tube(raw):
    match = _NAME_PREFIX.match(raw)
    name = _name(match.group(1))
    (delay,) = _numbers(raw[match.end():], (U32_MAX,))
    return name, delay


def _quit(raw):
    return ()


# (prefix, command, argument parser), tried in beanstalkd's order.
_COMMANDS = (
    (b"put ", "put", _put),
    (b"peek-ready", "peek-ready", _exact),
    (b"peek-delayed", "peek-delayed", _exact),
    (b"peek-buried", "peek-buried", _exact),
    (b"peek ", "peek", _one_id),
    (b"reserve-with-timeout ", "reserve-with-timeout", _reserve_with_timeout),
    (b"reserve-job ", "reserve-job", _one_id),
    (b"reserve", "reserve", _exact),
    (b"delete ", "delete", _one_id),
    (b"release ", "release", _release),
    (b"bury ", "bury", _bury),
    (b"kick-job ", "kick-job", _one_id),
    (b"kick ", "kick", _kick),
    (b"touch ", "touch", _one_id),
    (b"stats-job ", "stats-job", _one_id),
    (b"stats-tube ", "stats-tube", _one_name),
    (b"stats", "stats", _exact),
    (b"use ", "use", _one_name),
    (b"watch ", "watch", _one_name),
    (b"ignore ", "ignore", _one_name),
    (b"list-tubes-watched", "list-tubes-watched", _exact),
    (b"list-tube-used", "list-tube-used", _exact),
    (b"list-tubes", "list-tubes", _exact),
    (b"quit", "quit", _quit),
    (b"pause-tube", "pause-tube", _pause_tube),
)


_RESERVE = ("reserve", ())


def _usual(line):
    """The commands of a put/reserve/delete cycle in their usual form (single
    spaces, plain digits), parsed with bytes operations; None for any other
    line, which the general rules then parse (to the same result for these)."""
    if line == b"reserve":
        return _RESERVE
    parts = line.split(b" ")
    if len(parts) == 5 and parts[0] == b"put":
        _, priority, delay, ttr, size = parts
        if priority.isdigit() and delay.isdigit() and ttr.isdigit() and size.isdigit():
            values = int(priority), int(delay), int(ttr), int(size)
            if max(values) <= U32_MAX:
                return "put", values
    elif len(parts) == 2 and parts[0] == b"delete" and parts[1].isdigit():
        job_id = int(parts[1])
        if job_id <= U64_MAX:
            return "delete", (job_id,)
    return None


def parse(line):
    """
    The command of ``line`` (bytes, without its CRLF) and its arguments.

    @return: ``(command, args)``; ``args`` is a tuple of ints and str.
    @raise BadFormat: malformed arguments (or a NUL byte in the line).
    @raise UnknownCommand: no command matches.
    """
    return _usual(line) or general(line)


def general(line):
    """``parse`` by beanstalkd's rules alone, without the fast path."""
    if b"\0" in line:
        raise BadFormat()
    for prefix, command, arguments in _COMMANDS:
        if line.startswith(prefix):
            return command, arguments(line[len(prefix):])
    raise UnknownCommand()

