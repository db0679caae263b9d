"""``marconi-cli``: queues, messages, claims, subscriptions, and pools and
flavors (an admin's, on a pooled server), from the command line.

    marconi-cli [--url URL] [--project P] [--token T] [--api v1|v2] [--json] COMMAND ...

``--url`` defaults to ``$MARCONI_URL`` or ``http://127.0.0.1:8888``,
``--project`` to ``$MARCONI_PROJECT`` (unset: the global namespace in v1,
the project ``default`` in v2, which requires one), ``--api`` to
``$MARCONI_API`` (unset: v2 when the server offers it, else v1), ``--token``
to ``$MARCONI_TOKEN`` (sent as X-Auth-Token).
``--share-file`` presents a share document (``queue share --json``) instead
of a project. The global options may also follow the command. Output is a
table or text by default, stable JSON with ``--json``. Exit status: 0
success, 1 an error the server reported (or a connection failure), 2 a
usage error; errors are one line on stderr.
"""

import argparse
import functools
import json
import os
import sys

from twisted.internet import task

from marconi_tx import __version__
from marconi_tx.client import versions
from marconi_tx.client.client import DEFAULT_URL, Client
from marconi_tx.client.errors import FlavorNotFound, MarconiClientError, PoolNotFound
from marconi_tx.client.output import ProgressBar, compact, dump_json, table
from marconi_tx.client.pools import Flavor, Pool
from marconi_tx.client.resources import Claim
from marconi_tx.client.subscriptions import Subscription
from marconi_tx.deferreds import returns_deferred

PROG = "marconi-cli"

#: ttl of messages posted over v1 when neither --ttl nor the input gives
#: one (v2 leaves it out: the queue's default applies).
DEFAULT_TTL = 3600

#: A person waits: retry for a few seconds at most (0.2 + 0.4 + 0.8 s for a
#: refused connection, 3 x 2 s when the server asks to retry later).
CLIENT_RETRIES = dict(retries=3, backoff=0.2, max_backoff=2.0)

#: Widest body shown in a message table (--json shows everything).
BODY_WIDTH = 60


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit status 2."""


class _Exit(Exception):
    """argparse finished early (``--help``, ``--version``)."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that writes to the given stdout and raises instead
    of exiting, so that ``main`` runs in-process."""

    def __init__(self, *args, stdout=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stdout = stdout

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")

    def exit(self, status=0, message=None):
        if message:
            self.stdout.write(message)
        raise _Exit(status)

    def _print_message(self, message, file=None):
        if message:
            self.stdout.write(message)


def _json_argument(text):
    try:
        return json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): {text!r}")


def _json_object(text):
    value = _json_argument(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def _json_patch(text):
    value = _json_argument(text)
    if not isinstance(value, list) or not all(isinstance(op, dict) for op in value):
        raise argparse.ArgumentTypeError(f"not a JSON array of operation objects: {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"may not be negative: {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _global_options(parser, url, project, api, json_default, share_file=None, token=None):
    parser.add_argument("--url", default=url, metavar="URL",
                        help=f"server base URL (default: $MARCONI_URL or {DEFAULT_URL})")
    parser.add_argument("--project", default=project, metavar="P",
                        help="project (X-Project-ID; default: $MARCONI_PROJECT, else "
                             "the global namespace in v1 and the project "
                             f"{versions.DEFAULT_PROJECT!r} in v2)")
    parser.add_argument("--token", default=token, metavar="TOKEN",
                        help="X-Auth-Token of a server with authentication (default: "
                             "$MARCONI_TOKEN); without --project, the token's project")
    parser.add_argument("--api", default=api, choices=versions.APIS,
                        help="API version (default: $MARCONI_API, else v2 when "
                             "the server offers it)")
    parser.add_argument("--share-file", default=share_file,
                        metavar="PATH",
                        help="send the requests a share document allows (the "
                             "JSON of 'queue share'), without a project (v2)")
    parser.add_argument("--json", action="store_true", default=json_default,
                        help="print stable JSON instead of tables")


def build_parser(stdout, environ):
    """The argument parser; help goes to ``stdout``."""
    parser_class = functools.partial(_Parser, stdout=stdout)
    parser = parser_class(
        prog=PROG, description="Client of a Marconi (queuing) server, API v1 or v2.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _global_options(parser, environ.get("MARCONI_URL") or DEFAULT_URL,
                    environ.get("MARCONI_PROJECT") or None,
                    environ.get("MARCONI_API") or None, False,
                    token=environ.get("MARCONI_TOKEN") or None)
    # The same options after the command; SUPPRESS keeps the values given
    # before it when they are absent here.
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS, argparse.SUPPRESS, argparse.SUPPRESS,
                    argparse.SUPPRESS, argparse.SUPPRESS, argparse.SUPPRESS)

    groups = parser.add_subparsers(dest="group", metavar="COMMAND",
                                   required=True, parser_class=parser_class)

    def command(group_parsers, name, handler, help):
        sub = group_parsers.add_parser(name, help=help, description=help,
                                       parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    queue = groups.add_parser("queue", help="list, create, inspect and delete queues")
    queues = queue.add_subparsers(dest="command", metavar="ACTION", required=True,
                                  parser_class=parser_class)
    command(queues, "list", queue_list, "list the queues (with their metadata)")
    sub = command(queues, "create", queue_create, "create a queue")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--metadata", type=_json_object, metavar="JSON",
                     help="set the queue's metadata to this JSON object")
    sub = command(queues, "delete", queue_delete,
                  "delete a queue and its messages (exit 1 if it did not exist)")
    sub.add_argument("name", metavar="NAME")
    sub = command(queues, "exists", queue_exists,
                  "exit 0 if the queue exists, 1 if it does not")
    sub.add_argument("name", metavar="NAME")
    sub = command(queues, "stats", queue_stats, "message counts of a queue")
    sub.add_argument("name", metavar="NAME")
    sub = command(queues, "metadata", queue_metadata,
                  "print a queue's metadata, replace it with --set or patch it "
                  "with --patch")
    sub.add_argument("name", metavar="NAME")
    change = sub.add_mutually_exclusive_group()
    change.add_argument("--set", type=_json_object, metavar="JSON", dest="new_metadata",
                        help="replace the metadata with this JSON object")
    change.add_argument("--patch", type=_json_patch, metavar="JSON",
                        help='v2: apply these JSON-patch operations, e.g. [{"op": '
                             '"add", "path": "/metadata/owner", "value": "ops"}]')
    sub = command(queues, "purge", queue_purge,
                  "v2: delete every unclaimed message (and the subscriptions)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--only", action="append", dest="resource_types",
                     choices=("messages", "subscriptions"),
                     help="purge just this kind of resource (repeatable)")
    sub = command(queues, "share", queue_share,
                  "v2: pre-sign access to a queue; prints the share document")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--path", action="append", dest="paths",
                     choices=("messages", "claims", "subscriptions"),
                     help="a resource the holder may use (repeatable; "
                          "default: messages)")
    sub.add_argument("--method", action="append", dest="methods", metavar="METHOD",
                     type=str.upper,
                     help="an HTTP method the holder may send (repeatable; default: GET)")
    sub.add_argument("--expires", metavar="ISO8601",
                     help="when it stops working, in UTC (default: in 24 hours)")

    message = groups.add_parser("message", help="post, list, get and delete messages")
    messages = message.add_subparsers(dest="command", metavar="ACTION", required=True,
                                      parser_class=parser_class)
    sub = command(messages, "post", message_post,
                  "post messages (JSON bodies as arguments, or JSON lines from a file)")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("bodies", nargs="*", type=_json_argument, metavar="BODY_JSON",
                     help="a message body (any JSON value)")
    sub.add_argument("--file", metavar="PATH|-",
                     help="JSON lines to post, '-' for stdin: each line a body, or "
                          'an object {"ttl": N, "body": ...}')
    sub.add_argument("--ttl", type=int, metavar="N",
                     help="ttl in seconds of messages that give none (default: "
                          f"v1 {DEFAULT_TTL}, v2 the queue's)")
    sub.add_argument("--delay", type=_non_negative_int, metavar="N",
                     help="v2: seconds before the messages can be listed or "
                          "claimed (honoured on queues with a _default_message_delay)")
    sub = command(messages, "list", message_list, "list messages, oldest first")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("--echo", action="store_true",
                     help="include messages this client posted (not useful from a "
                          "fresh CLI process: each run has a new Client-ID)")
    sub.add_argument("--include-claimed", action="store_true",
                     help="include claimed messages")
    sub.add_argument("--limit", type=_positive_int, metavar="N",
                     help="list at most N messages (default: all)")
    sub = command(messages, "pop", message_pop,
                  "v2: remove and print the oldest unclaimed messages")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("--count", type=_positive_int, default=1, metavar="N",
                     help="most messages to pop (default 1)")
    sub = command(messages, "get", message_get, "show messages by id")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("ids", nargs="+", metavar="ID")
    sub = command(messages, "delete", message_delete,
                  "delete messages by id (a claimed message needs its --claim); "
                  "exit 1 if any of them did not exist")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("ids", nargs="+", metavar="ID")
    sub.add_argument("--claim", metavar="CLAIM_ID", dest="claim_id",
                     help="the claim holding the messages")

    claim = groups.add_parser("claim", help="claim messages, renew and release claims")
    claims = claim.add_subparsers(dest="command", metavar="ACTION", required=True,
                                  parser_class=parser_class)
    sub = command(claims, "create", claim_create, "claim free messages")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("--limit", type=int, default=10, metavar="N",
                     help="most messages to claim (default 10)")
    sub.add_argument("--ttl", type=int, default=60, metavar="N",
                     help="seconds the claim lasts (default 60)")
    sub.add_argument("--grace", type=int, default=60, metavar="N",
                     help="extra seconds the claimed messages live (default 60)")
    sub.add_argument("--wait", type=int, default=None, metavar="N",
                     help="if nothing is free, wait up to N seconds for a message "
                          "(long polling; the server's max_claim_wait bounds N)")
    sub = command(claims, "get", claim_get, "show a claim and its messages")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("claim_id", metavar="CLAIM_ID")
    sub = command(claims, "renew", claim_renew,
                  "renew a claim for --ttl seconds from now (default: its ttl)")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("claim_id", metavar="CLAIM_ID")
    sub.add_argument("--ttl", type=int, metavar="N")
    sub.add_argument("--grace", type=int, metavar="N")
    sub = command(claims, "release", claim_release, "release a claim")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("claim_id", metavar="CLAIM_ID")

    subscription = groups.add_parser(
        "subscription", help="v2: webhook subscribers of a queue (create, list, change, delete)")
    subscriptions = subscription.add_subparsers(dest="command", metavar="ACTION",
                                                required=True, parser_class=parser_class)
    sub = command(subscriptions, "create", subscription_create,
                  "subscribe a URL to the queue's messages")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("subscriber", metavar="URL", help="http or https URL to post messages to")
    sub.add_argument("--ttl", type=_positive_int, metavar="N",
                     help="seconds the subscription lasts (server default: 3600)")
    sub.add_argument("--options", type=_json_object, metavar="JSON",
                     help="its options, a JSON object (post_headers, post_data, "
                          "_retry_policy)")
    sub = command(subscriptions, "list", subscription_list, "list the queue's subscriptions")
    sub.add_argument("queue", metavar="QUEUE")
    for name, handler, help in (("get", subscription_get, "show a subscription"),
                                ("delete", subscription_delete, "delete a subscription")):
        sub = command(subscriptions, name, handler, help)
        sub.add_argument("queue", metavar="QUEUE")
        sub.add_argument("subscription_id", metavar="ID")
    sub = command(subscriptions, "update", subscription_update,
                  "change a subscription's subscriber, ttl or options")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("subscription_id", metavar="ID")
    sub.add_argument("--subscriber", metavar="URL")
    sub.add_argument("--ttl", type=_positive_int, metavar="N",
                     help="seconds from now")
    sub.add_argument("--options", type=_json_object, metavar="JSON",
                     help="replaces every option")
    sub = command(subscriptions, "confirm", subscription_confirm,
                  "confirm a subscription (--no to unconfirm it)")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("subscription_id", metavar="ID")
    sub.add_argument("--no", dest="confirmed", action="store_false")

    pool = groups.add_parser(
        "pool", help="v2, admin: the storage backends of a pooled server")
    pools = pool.add_subparsers(dest="command", metavar="ACTION", required=True,
                                parser_class=parser_class)
    sub = command(pools, "create", pool_create,
                  "register a storage URI as a pool (the storage must answer)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--uri", required=True, metavar="URI",
                     help="its storage: sqlite:PATH or mongodb://...")
    sub.add_argument("--weight", required=True, type=_non_negative_int, metavar="N",
                     help="its share of new queues (0: none)")
    sub.add_argument("--flavor", metavar="FLAVOR", help="the flavor it serves")
    sub.add_argument("--options", type=_json_object, metavar="JSON",
                     help="its options, a JSON object")
    sub = command(pools, "list", pool_list, "list the pools")
    sub.add_argument("--detailed", action="store_true", help="with their options")
    for name, handler, help in (("get", pool_get, "show a pool"),
                                ("delete", pool_delete, "delete a pool that no queue uses "
                                 "(exit 1 if it did not exist)")):
        sub = command(pools, name, handler, help)
        sub.add_argument("name", metavar="NAME")
    sub = command(pools, "update", pool_update,
                  "change a pool's URI, weight, flavor or options")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--uri", metavar="URI")
    sub.add_argument("--weight", type=_non_negative_int, metavar="N")
    flavored = sub.add_mutually_exclusive_group()
    flavored.add_argument("--flavor", metavar="FLAVOR")
    flavored.add_argument("--no-flavor", action="store_true",
                          help="take the pool out of its flavor")
    sub.add_argument("--options", type=_json_object, metavar="JSON",
                     help="replaces every option")

    flavor = groups.add_parser("flavor", help="v2, admin: named sets of pools")
    flavors = flavor.add_subparsers(dest="command", metavar="ACTION", required=True,
                                    parser_class=parser_class)
    for name, handler, help in (("create", flavor_create, "make a flavor of pools"),
                                ("update", flavor_update, "change a flavor's pools (the "
                                 "ones left out leave it)")):
        sub = command(flavors, name, handler, help)
        sub.add_argument("name", metavar="NAME")
        sub.add_argument("--pool", action="append", required=True, dest="pool_list",
                         metavar="POOL", help="a pool of the flavor (repeatable)")
        sub.add_argument("--capabilities", type=_json_object, metavar="JSON",
                         help='capabilities to declare, e.g. {"FAST_DISK": true}')
    command(flavors, "list", flavor_list, "list the flavors")
    for name, handler, help in (("get", flavor_get, "show a flavor"),
                                ("delete", flavor_delete, "delete a flavor (its pools stay) "
                                 "(exit 1 if it did not exist)")):
        sub = command(flavors, name, handler, help)
        sub.add_argument("name", metavar="NAME")

    command(groups, "health", health, "check that the server and its storage are up")
    return parser


class Session:
    """One run of a command: its client, arguments and streams."""

    def __init__(self, client, args, stdin, stdout, stderr):
        self.client, self.args = client, args
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    def show(self, document, text):
        """Print ``document`` as JSON with --json, else ``text``."""
        self.stdout.write((dump_json(document) if self.args.json else text) + "\n")

    def fail(self, message):
        """One error line on stderr."""
        self.stderr.write(f"{PROG}: error: {message}\n")


def _message_rows(messages):
    return [(m.id, m.age, m.ttl, compact(m.body, BODY_WIDTH)) for m in messages]


def _message_table(messages, empty="no messages"):
    if not messages:
        return empty
    return table(("ID", "AGE", "TTL", "BODY"), _message_rows(messages))


def _claim_text(claim):
    if claim.id is None:
        return "no messages to claim"
    head = (f"claim {claim.id} (ttl {claim.ttl} s, age {claim.age} s): "
            f"{len(claim.messages)} message(s)")
    return head + "\n" + _message_table(claim.messages)


async def queue_list(session):
    queues = await session.client.queues(detailed=True).collect()
    document = [{"name": q.name, "href": q.href, "metadata": q.listed_metadata}
                for q in queues]
    text = table(("NAME", "METADATA"),
                 [(q.name, compact(q.listed_metadata or {})) for q in queues]) \
        if queues else "no queues"
    session.show(document, text)
    return 0


async def queue_create(session):
    name = session.args.name
    created = await session.client.queue(name).create(session.args.metadata)
    session.show({"name": name, "created": created},
                 f"created queue {name}" if created else f"queue {name} already exists")
    return 0


async def queue_delete(session):
    # The API's DELETE says 204 whether the queue existed or not: ask first,
    # so that a typo does not read as a success (as ``queue exists``: 1).
    name = session.args.name
    queue = session.client.queue(name)
    existed = await queue.exists()
    if existed:
        await queue.delete()
    session.show({"name": name, "deleted": existed},
                 f"deleted queue {name}" if existed else f"queue {name} did not exist")
    return 0 if existed else 1


async def queue_exists(session):
    name = session.args.name
    exists = await session.client.queue(name).exists()
    session.show({"name": name, "exists": exists},
                 f"queue {name} exists" if exists else f"queue {name} does not exist")
    return 0 if exists else 1


async def queue_stats(session):
    stats = await session.client.queue(session.args.name).stats()
    counts = stats.get("messages", {})
    rows = [(key, counts.get(key, "")) for key in ("free", "claimed", "total")]
    for key in ("oldest", "newest"):
        if isinstance(counts.get(key), dict):
            m = counts[key]
            rows.append((key, f"{m.get('href')} (age {m.get('age')} s, "
                              f"created {m.get('created')})"))
    session.show(stats, table(("MESSAGES", ""), rows))
    return 0


async def queue_metadata(session):
    queue = session.client.queue(session.args.name)
    if session.args.new_metadata is not None:
        await queue.set_metadata(session.args.new_metadata)
        metadata = session.args.new_metadata
    elif session.args.patch is not None:
        metadata = await queue.patch_metadata(session.args.patch)
    else:
        metadata = await queue.metadata()
    session.show(metadata, dump_json(metadata))
    return 0


async def queue_purge(session):
    args = session.args
    await session.client.queue(args.name).purge(args.resource_types)
    kinds = args.resource_types or ["messages", "subscriptions"]
    session.show({"name": args.name, "purged": kinds},
                 f"purged the {' and '.join(kinds)} of queue {args.name}")
    return 0


async def queue_share(session):
    args = session.args
    document = await session.client.queue(args.name).share(
        args.paths, args.methods, args.expires)
    session.show(document, dump_json(document))
    return 0


def _message(body, ttl, delay):
    """A message to post: ``body`` with the ttl and delay that are given."""
    message = {"body": body}
    if ttl is not None:
        message["ttl"] = ttl
    if delay is not None:
        message["delay"] = delay
    return message


def _read_lines(session, path, ttl, delay):
    """The messages of a JSON-lines file (``-``: stdin)."""
    try:
        if path == "-":
            lines = session.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text")
    messages = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as e:
            raise UsageError(f"{path}:{number}: not valid JSON ({e})")
        if isinstance(value, dict) and set(value) in ENVELOPES:
            messages.append(_message(value["body"], value["ttl"],
                                     value.get("delay", delay)))
        else:
            messages.append(_message(value, ttl, delay))
    return messages


#: The keys of a JSON line that is a whole message rather than a body.
ENVELOPES = ({"ttl", "body"}, {"ttl", "body", "delay"})


async def message_post(session):
    args = session.args
    ttl = args.ttl
    if ttl is None and await session.client.api_version() == versions.V1:
        ttl = DEFAULT_TTL
    messages = [_message(body, ttl, args.delay) for body in args.bodies]
    if args.file is not None:
        messages += _read_lines(session, args.file, ttl, args.delay)
    if not messages:
        raise UsageError("nothing to post: give BODY_JSON arguments or --file")
    bar = None
    isatty = getattr(session.stderr, "isatty", None)
    if args.file is not None and isatty is not None and isatty():
        bar = ProgressBar(session.stderr, f"posting to {args.queue}")
        bar.update(0, len(messages))
    try:
        ids = await session.client.queue(args.queue).post_messages(
            messages, progress=bar.update if bar else None)
    except MarconiClientError as e:
        if bar:
            bar.finish()
        posted = getattr(e, "posted_ids", None)
        if posted:
            session.stderr.write(f"{PROG}: {len(posted)} of {len(messages)} "
                                 f"messages were posted before the error\n")
        raise
    if bar:
        bar.finish()
    session.show({"queue": args.queue, "ids": ids},
                 f"posted {len(ids)} message(s) to {args.queue}\n" + "\n".join(ids))
    return 0


async def message_list(session):
    args = session.args
    messages = await session.client.queue(args.queue).messages(
        echo=args.echo, include_claimed=args.include_claimed,
        limit=args.limit).collect()
    session.show([m.as_dict() for m in messages], _message_table(messages))
    return 0


async def message_pop(session):
    args = session.args
    messages = await session.client.queue(args.queue).pop(args.count)
    session.show([m.as_dict() for m in messages], _message_table(messages))
    return 0


async def message_get(session):
    args = session.args
    messages = await session.client.queue(args.queue).get_messages(args.ids)
    session.show([m.as_dict() for m in messages], _message_table(messages))
    found = {m.id for m in messages}
    missing = [i for i in dict.fromkeys(args.ids) if i not in found]
    if missing:
        session.fail(f"no such message(s) in {args.queue}: {', '.join(missing)}")
        return 1
    return 0


async def message_delete(session):
    args = session.args
    queue = session.client.queue(args.queue)
    # The API's DELETE says 204 for a message that is not there: ask first.
    found = {m.id for m in await queue.get_messages(args.ids)}
    ids = [i for i in dict.fromkeys(args.ids) if i in found]
    missing = [i for i in dict.fromkeys(args.ids) if i not in found]
    # One DELETE per message, so that a claimed message is only deleted
    # with its claim id (the bulk delete ignores claims).
    for message_id in ids:
        await queue.delete_message(message_id, args.claim_id)
    session.show({"queue": args.queue, "deleted": ids},
                 f"deleted {len(ids)} message(s) from {args.queue}")
    if missing:  # as ``message get`` says it
        session.fail(f"no such message(s) in {args.queue}: {', '.join(missing)}")
        return 1
    return 0


async def claim_create(session):
    args = session.args
    claim = await session.client.queue(args.queue).claim(
        limit=args.limit, ttl=args.ttl, grace=args.grace, wait=args.wait)
    session.show(claim.as_dict(), _claim_text(claim))
    return 0


async def claim_get(session):
    args = session.args
    claim = await session.client.queue(args.queue).get_claim(args.claim_id)
    session.show(claim.as_dict(), _claim_text(claim))
    return 0


async def claim_renew(session):
    args = session.args
    claim = await session.client.queue(args.queue).get_claim(args.claim_id)
    await claim.update(ttl=args.ttl, grace=args.grace)
    session.show(claim.as_dict(), f"renewed claim {claim.id} for {claim.ttl} s")
    return 0


async def claim_release(session):
    args = session.args
    await Claim(session.client.queue(args.queue), args.claim_id, None, None, []).release()
    session.show({"id": args.claim_id, "released": True},
                 f"released claim {args.claim_id}")
    return 0


def _subscriptions_table(subscriptions):
    return table(("ID", "SUBSCRIBER", "TTL", "AGE", "CONFIRMED", "OPTIONS"),
                 [_subscription_row(s) for s in subscriptions])


def _subscription_text(subscription):
    return _subscriptions_table([subscription])


def _subscription_row(s):
    return (s.id, s.subscriber, s.ttl, s.age, "yes" if s.confirmed else "no",
            compact(s.options or {}, BODY_WIDTH))


async def subscription_create(session):
    args = session.args
    subscription = await session.client.queue(args.queue).subscribe(
        args.subscriber, args.ttl, args.options)
    session.show(subscription.as_dict(), _subscription_text(subscription))
    return 0


async def subscription_list(session):
    found = await session.client.queue(session.args.queue).subscriptions().collect()
    text = _subscriptions_table(found) if found else "no subscriptions"
    session.show([s.as_dict() for s in found], text)
    return 0


async def subscription_get(session):
    args = session.args
    subscription = await session.client.queue(args.queue).get_subscription(
        args.subscription_id)
    session.show(subscription.as_dict(), _subscription_text(subscription))
    return 0


async def subscription_update(session):
    args = session.args
    if args.subscriber is None and args.ttl is None and args.options is None:
        session.fail("give --subscriber, --ttl or --options")
        return 2
    queue = session.client.queue(args.queue)
    await Subscription(queue, args.subscription_id).update(args.subscriber, args.ttl,
                                                           args.options)
    subscription = await queue.get_subscription(args.subscription_id)
    session.show(subscription.as_dict(), _subscription_text(subscription))
    return 0


async def subscription_confirm(session):
    args = session.args
    subscription = Subscription(session.client.queue(args.queue), args.subscription_id)
    await subscription.confirm(args.confirmed)
    session.show({"id": args.subscription_id, "confirmed": args.confirmed},
                 f"{'confirmed' if args.confirmed else 'unconfirmed'} subscription "
                 f"{args.subscription_id}")
    return 0


async def subscription_delete(session):
    args = session.args
    await Subscription(session.client.queue(args.queue), args.subscription_id).delete()
    session.show({"id": args.subscription_id, "deleted": True},
                 f"deleted subscription {args.subscription_id}")
    return 0


def _pools_table(pools):
    return table(("NAME", "URI", "WEIGHT", "FLAVOR", "OPTIONS"),
                 [(p.name, p.uri, p.weight, p.flavor or "",
                   "" if p.options is None else compact(p.options, BODY_WIDTH))
                  for p in pools])


async def pool_create(session):
    args = session.args
    pool = await session.client.create_pool(args.name, args.uri, args.weight, args.flavor,
                                            args.options)
    session.show(pool.as_dict(), _pools_table([pool]))
    return 0


async def pool_list(session):
    found = await session.client.pools(detailed=session.args.detailed).collect()
    session.show([p.as_dict() for p in found], _pools_table(found) if found else "no pools")
    return 0


async def pool_get(session):
    pool = await session.client.get_pool(session.args.name)
    session.show(pool.as_dict(), _pools_table([pool]))
    return 0


async def pool_update(session):
    args = session.args
    if (args.uri is None and args.weight is None and args.flavor is None
            and not args.no_flavor and args.options is None):
        session.fail("give --uri, --weight, --flavor, --no-flavor or --options")
        return 2
    pool = Pool(session.client, args.name)
    await pool.update(args.uri, args.weight, args.flavor, args.options, args.no_flavor)
    session.show(pool.as_dict(), _pools_table([pool]))
    return 0


async def _delete_asked_first(session, kind, get, not_found):
    # DELETE says 204 for a pool or flavor that is not there: ask first (as
    # queue delete).
    name = session.args.name
    try:
        found = await get(name)
    except not_found:
        session.show({"name": name, "deleted": False}, f"{kind} {name} did not exist")
        return 1
    await found.delete()
    session.show({"name": name, "deleted": True}, f"deleted {kind} {name}")
    return 0


async def pool_delete(session):
    return await _delete_asked_first(session, "pool", session.client.get_pool, PoolNotFound)


def _flavors_table(flavors):
    return table(("NAME", "POOLS", "CAPABILITIES"),
                 [(f.name, ",".join(f.pool_list or []), ",".join(f.capabilities or []))
                  for f in flavors])


async def flavor_create(session):
    args = session.args
    flavor = await session.client.create_flavor(args.name, args.pool_list, args.capabilities)
    session.show(flavor.as_dict(), _flavors_table([flavor]))
    return 0


async def flavor_list(session):
    found = await session.client.flavors(detailed=True).collect()
    session.show([f.as_dict() for f in found],
                 _flavors_table(found) if found else "no flavors")
    return 0


async def flavor_get(session):
    flavor = await session.client.get_flavor(session.args.name)
    session.show(flavor.as_dict(), _flavors_table([flavor]))
    return 0


async def flavor_update(session):
    args = session.args
    flavor = Flavor(session.client, args.name)
    await flavor.update(args.pool_list, args.capabilities)
    session.show(flavor.as_dict(), _flavors_table([flavor]))
    return 0


async def flavor_delete(session):
    return await _delete_asked_first(session, "flavor", session.client.get_flavor,
                                     FlavorNotFound)


async def health(session):
    healthy = await session.client.health()
    session.show({"healthy": healthy}, "ok" if healthy else "storage unavailable")
    return 0 if healthy else 1


def _client(args, **kwargs):
    """The Client the arguments ask for.

    @raise UsageError: a bad ``--url``, ``$MARCONI_API`` or share file.
    """
    if args.api not in (None, *versions.APIS):
        raise UsageError(f"$MARCONI_API: not one of {', '.join(versions.APIS)}: "
                         f"{args.api!r}")
    if args.share_file is None:
        try:
            return Client(args.url, project=args.project, api=args.api, token=args.token,
                          **kwargs)
        except ValueError as e:
            raise UsageError(f"--url: {e}")
    try:
        with open(args.share_file, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as e:
        raise UsageError(f"cannot read {args.share_file}: {e.strerror}")
    except ValueError as e:
        raise UsageError(f"{args.share_file}: not JSON ({e})")
    try:
        return Client.signed(args.url, document, **kwargs)
    except ValueError as e:
        raise UsageError(f"{args.share_file}: {e}")


@returns_deferred
async def run(reactor, argv, *, treq=None, stdin, stdout, stderr, environ):
    """Run one command; a Deferred firing with the exit status."""
    try:
        args = build_parser(stdout, environ).parse_args(argv)
    except _Exit as e:
        return e.status
    except UsageError as e:
        stderr.write(f"{e}\n")
        return 2
    try:
        client = _client(args, treq=treq, reactor=reactor, **CLIENT_RETRIES)
    except UsageError as e:
        stderr.write(f"{PROG}: error: {e}\n")
        return 2
    session = Session(client, args, stdin, stdout, stderr)
    try:
        return await args.handler(session)
    except UsageError as e:
        session.fail(str(e))
        return 2
    except MarconiClientError as e:
        session.fail(str(e))
        return 1
    except Exception as e:
        # A bug or a broken stream: still one line, never a traceback.
        session.fail(f"unexpected {type(e).__name__}: {e}")
        return 1


def main(argv=None, *, treq=None, reactor=None, stdin=None, stdout=None,
         stderr=None, environ=None):
    """The ``marconi-cli`` console script.

    Without ``reactor`` it runs the global reactor with L{task.react} and
    exits the process with the command's status. With a ``reactor`` (tests:
    a L{task.Clock} beside a L{treq.testing.StubTreq} as ``treq``) it returns
    a Deferred firing with the exit status instead.

    @param argv: the arguments (default ``sys.argv[1:]``).
    @param environ: the environment (default ``os.environ``), for
        ``MARCONI_URL`` and ``MARCONI_PROJECT``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    streams = dict(stdin=stdin or sys.stdin, stdout=stdout or sys.stdout,
                   stderr=stderr or sys.stderr)
    environ = os.environ if environ is None else environ
    if reactor is not None:
        return run(reactor, argv, treq=treq, environ=environ, **streams)

    async def react_main(reactor):
        status = await run(reactor, argv, treq=treq, environ=environ, **streams)
        if status:
            raise SystemExit(status)

    task.react(react_main)


if __name__ == "__main__":
    main()
