"""Settings: ``etc/marconi.conf`` (INI) -> typed, validated values.

``OPTIONS`` is the one table of every setting; the loader, the command-line
overrides and the sample configuration all follow it. Settings are read as
``config.<group>.<name>``, where the group is the last part of the INI
section name (``[limits:transport]`` -> ``config.transport``).
"""

import configparser
from dataclasses import dataclass
from types import SimpleNamespace


class ConfigError(Exception):
    """A configuration value or file is unusable; the message names it."""


@dataclass(frozen=True)
class Option:
    section: str
    name: str
    kind: type  # int, float, str or bool
    default: object
    help: str
    minimum: object = None
    maximum: object = None
    choices: tuple = ()

    @property
    def group(self):
        return self.section.rsplit(":", 1)[-1]

    def parse(self, raw):
        """Convert a string from a file or the command line; ConfigError."""
        where = f"[{self.section}] {self.name}"
        raw = raw.strip()
        try:
            if self.kind is bool:
                value = _parse_bool(raw)
            elif self.kind is str:
                value = raw
            else:
                value = self.kind(raw)
        except ValueError:
            raise ConfigError(f"{where}: {raw!r} is not a valid {self.kind.__name__}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{where}: {value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"{where}: {value} is above the maximum {self.maximum}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(self.choices)}")
        return value


def _parse_bool(raw):
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_INT64 = 2**63 - 1
# Durations are capped far below 2**63 so that now + ttl + grace never
# overflows a 64-bit timestamp in any engine.
MAX_SECONDS = 2**32

OPTIONS = (
    # [drivers]: what runs and where.
    Option("drivers", "storage", str, "sqlite:var/marconi.db",
           "Storage URI: sqlite:PATH, sqlite::memory: or mongodb://HOST:PORT/DB."),
    Option("drivers", "http", str, "tcp:8888:interface=127.0.0.1",
           "Twisted strports endpoint of the HTTP API."),
    Option("drivers", "line", str, "",
           "Twisted strports endpoint of the beanstalkd-style TCP endpoint "
           "(empty: off)."),
    Option("drivers", "access_log", str, "",
           "File receiving an HTTP access log in the combined format (empty: no "
           "access log; it costs about a tenth of a small request's time)."),
    Option("drivers", "max_unsent_bytes", int, 1048576,
           "Bytes of HTTP answers a connection may have waiting to be sent before "
           "it reads no further request (a client that pipelines requests but "
           "does not read costs at most this, plus one answer).",
           minimum=4096, maximum=2**31 - 1),
    Option("drivers", "health_timeout", float, 2.0,
           "Seconds GET /v1/health waits for the storage before answering 503.",
           minimum=0.01, maximum=3600.0),
    Option("drivers", "log_interval", float, 60.0,
           "Seconds between two log lines of one kind that clients can provoke "
           "(failures, timed-out connections); the next line counts those "
           "suppressed (0: every line).", minimum=0.0, maximum=86400.0),
    Option("drivers", "workers", int, 1,
           "Processes serving the HTTP port (SO_REUSEPORT; Linux spreads "
           "connections across them). More than 1 needs a tcp: or tcp6: http "
           "endpoint and a shared storage (a sqlite file or MongoDB).",
           minimum=1, maximum=64),
    Option("drivers", "gc_interval", float, 30.0,
           "Seconds between runs of the job deleting expired messages and claims.",
           minimum=0.01),
    Option("drivers", "metrics", bool, True,
           "Serve GET /metrics (Prometheus text format) and count what it shows."),
    Option("drivers", "metrics_depth_interval", float, 15.0,
           "Seconds between background reads of the queue depths /metrics shows.",
           minimum=1.0),
    Option("drivers", "metrics_depth_queues", int, 100,
           "Most queues (the recently active ones) whose depth /metrics shows "
           "(0: none).", minimum=0, maximum=10000),
    Option("drivers", "shutdown_timeout", float, 10.0,
           "Seconds a stopping daemon (SIGTERM) lets requests in flight finish "
           "before it closes their connections.", minimum=0.0, maximum=3600.0),
    Option("drivers", "http_max_connections", int, 0,
           "Most HTTP connections open at once, per process; more are closed at "
           "once (0: an equal share with the line endpoint of the open-files "
           "limit, after a reserve for storage).", minimum=0, maximum=2**31 - 1),
    Option("drivers", "line_max_connections", int, 0,
           "Most line endpoint connections open at once; more are closed at once "
           "(0: automatic, as http_max_connections).", minimum=0, maximum=2**31 - 1),
    Option("drivers", "admin_mode", bool, False,
           "Serve the admin API of v1.1 and v2: GET /v1.1/health and /v2/health "
           "(a detailed JSON report; off: 404). Ping is always served."),
    Option("drivers", "pooling", bool, False,
           "Spread queues over pools (storage backends registered through the "
           "v2 admin API, /v2/pools and /v2/flavors, served with admin_mode): "
           "[drivers] storage then holds the catalog of which queue lives in "
           "which pool."),
    Option("drivers", "enable_checksum", bool, False,
           "Give every v2 message a 'checksum' (MD5 of its JSON body)."),
    Option("drivers", "queue_metadata_cache_seconds", float, 1.0,
           "Seconds a process keeps a queue's metadata for v2's posts and claims "
           "(its reserved attributes); a change made through another process "
           "(--workers) applies within them (0: read it on every request).",
           minimum=0.0, maximum=3600.0),

    Option("drivers:storage:sqlite", "synchronous", str, "NORMAL",
           "SQLite synchronous pragma. NORMAL (WAL) survives a kill -9 of the "
           "daemon; FULL also survives power loss at the cost of an fsync a write.",
           choices=("NORMAL", "FULL")),
    Option("drivers:storage:sqlite", "group_commit", bool, True,
           "Commit the writes of one reactor turn together (each request still "
           "all or nothing, acknowledged only after the COMMIT)."),
    Option("drivers:storage:sqlite", "busy_timeout", float, 5.0,
           "Seconds a write may wait for another process holding the database "
           "lock before failing with 503; it waits queued, not stalling the daemon.",
           minimum=0.0),
    Option("drivers:storage:sqlite", "wal_max_bytes", int, 64 * 1024 * 1024,
           "Bound of the WAL file (bytes): past it, writes wait a moment while a "
           "checkpoint copies the WAL into the database and restarts it, and the "
           "next commit cuts the file back to this size (0: no bound; the file "
           "then grows under steady load).",
           minimum=0, maximum=_INT64),

    Option("drivers:storage:mongodb", "pool_size", int, 10,
           "Connections in the txmongo pool.", minimum=1, maximum=1000),
    Option("drivers:storage:mongodb", "connect_timeout", float, 5.0,
           "Seconds to wait for a connection to the server.", minimum=0.1),
    Option("drivers:storage:mongodb", "operation_timeout", float, 10.0,
           "Seconds before a storage call gives up; the client then gets 503 "
           "with Retry-After.", minimum=0.1),
    Option("drivers:storage:mongodb", "write_concern", str, "majority",
           "Write concern 'w' for every write: a number of members (1 or more; 0 is "
           "refused), or majority."),
    Option("drivers:storage:mongodb", "journal", bool, True,
           "Acknowledge writes only once they are in the server's journal (j=true)."),
    Option("drivers:storage:mongodb", "max_post_retries", int, 1000,
           "Attempts to post a batch when another producer took the same markers.",
           minimum=1, maximum=100000),
    Option("drivers:storage:mongodb", "max_retries", int, 5,
           "Times a storage call is run again after a replica-set failover or a "
           "dropped connection answered it (only calls safe to repeat; all within "
           "operation_timeout; 0: never).", minimum=0, maximum=100),
    Option("drivers:storage:mongodb", "retry_backoff", float, 0.2,
           "Seconds before the first retry of a storage call; doubled at each "
           "further retry.", minimum=0.0, maximum=60.0),

    Option("drivers:storage:pooling", "refresh_interval", float, 5.0,
           "With [drivers] pooling: seconds between reads of the pool list from the "
           "catalog (a pool added, changed or removed elsewhere is seen within them; "
           "a queue placed in a pool this process does not know yet is seen at once).",
           minimum=0.1, maximum=86400.0),
    Option("drivers:storage:pooling", "route_cache_size", int, 100000,
           "With [drivers] pooling: queue -> pool routes each process keeps in memory "
           "(the least recently used are dropped, then read from the catalog again).",
           minimum=1, maximum=2**31 - 1),

    Option("drivers:transport:line", "project", str, "",
           "Project whose queues the line endpoint's tubes are (empty: the global "
           "namespace, as HTTP requests without X-Project-ID)."),
    Option("drivers:transport:line", "message_ttl", int, 86400,
           "ttl in seconds of jobs put over the line endpoint (beanstalkd has none).",
           minimum=1, maximum=MAX_SECONDS),
    Option("drivers:transport:line", "max_job_size", int, 65535,
           "Largest job body in bytes (beanstalkd's -z); bigger puts get JOB_TOO_BIG.",
           minimum=1, maximum=2**31 - 1),
    Option("drivers:transport:line", "max_line_length", int, 224,
           "Longest command line in bytes, CRLF included (beanstalkd's LINE_BUF_SIZE).",
           minimum=16, maximum=65536),
    Option("drivers:transport:line", "idle_timeout", float, 0.0,
           "Seconds without input after which a connection is closed, unless a "
           "reserve waits (0: never, as beanstalkd).", minimum=0.0, maximum=MAX_SECONDS),
    Option("drivers:transport:line", "reservations_file", str, "var/line-reservations",
           "File recording the endpoint's reservations, so that a restart after a "
           "crash gives back the jobs reserved then (one daemon per file; empty: "
           "none, such jobs stay reserved until their ttr)."),

    Option("drivers:transport:line", "tls", str, "",
           "A second endpoint of the line protocol, over TLS: a Twisted ssl: "
           "endpoint (ssl:11301:privateKey=key.pem:certKey=cert.pem; empty: none)."),
    Option("drivers:transport:line", "require_auth", bool, False,
           "Connections must send 'auth TOKEN' (checked by [auth] strategy) before "
           "any other command; the token's project is the connection's."),

    # [limits:transport]: the API's limits (api-v1.md section 1.6).
    Option("limits:transport", "max_queues_per_page", int, 20,
           "Largest 'limit' of a queue listing.", minimum=1, maximum=_INT64),
    Option("limits:transport", "max_messages_per_page", int, 20,
           "Largest 'limit' of a message listing and most ids in one ?ids= request.",
           minimum=1, maximum=_INT64),
    Option("limits:transport", "max_messages_per_claim", int, 20,
           "Largest 'limit' of a claim.", minimum=1, maximum=_INT64),
    Option("limits:transport", "max_queue_metadata", int, 65536,
           "Largest queue metadata document, in bytes (Content-Length).",
           minimum=1, maximum=_INT64),
    Option("limits:transport", "max_message_size", int, 262144,
           "Largest message POST request body, in bytes (Content-Length).",
           minimum=1, maximum=_INT64),
    # Ruby's JSON and MongoDB's documents stop at 100 levels too; json_text
    # decodes nothing deeper than READ_NESTING (recursion, see json_text).
    Option("limits:transport", "max_json_nesting", int, 100,
           "Deepest nesting of arrays and objects in a message body or a queue "
           "metadata document.", minimum=1, maximum=200),
    Option("limits:transport", "min_message_ttl", int, 60,
           "Smallest message ttl, in seconds.", minimum=1, maximum=MAX_SECONDS),
    Option("limits:transport", "max_message_ttl", int, 1209600,
           "Largest message ttl, in seconds.", minimum=1, maximum=MAX_SECONDS),
    Option("limits:transport", "min_claim_ttl", int, 60,
           "Smallest claim ttl, in seconds.", minimum=1, maximum=MAX_SECONDS),
    Option("limits:transport", "max_claim_ttl", int, 43200,
           "Largest claim ttl, in seconds.", minimum=1, maximum=MAX_SECONDS),
    Option("limits:transport", "min_claim_grace", int, 60,
           "Smallest claim grace, in seconds.", minimum=0, maximum=MAX_SECONDS),
    Option("limits:transport", "max_claim_grace", int, 43200,
           "Largest claim grace, in seconds.", minimum=0, maximum=MAX_SECONDS),
    Option("limits:transport", "default_message_ttl", int, 3600,
           "ttl in seconds of a v1.1 or v2 message posted without one (v2: unless "
           "its queue sets _default_message_ttl).", minimum=1, maximum=MAX_SECONDS),
    Option("limits:transport", "default_claim_ttl", int, 300,
           "ttl in seconds of a v1.1 or v2 claim created or renewed without one.",
           minimum=1, maximum=MAX_SECONDS),
    Option("limits:transport", "default_claim_grace", int, 60,
           "grace in seconds of a v1.1 or v2 claim created or renewed without one.",
           minimum=0, maximum=MAX_SECONDS),
    Option("limits:transport", "max_claim_wait", int, 20,
           "Largest 'wait' of a long-poll claim (POST .../claims?wait=N), in seconds: "
           "how long a claim that finds nothing free may wait for a message. 0 "
           "refuses any wait above 0.", minimum=0, maximum=3600),
    Option("limits:transport", "max_message_delay", int, 900,
           "Largest delay in seconds of a v2 message (and of a queue's "
           "_default_message_delay).", minimum=0, maximum=MAX_SECONDS),
    Option("limits:transport", "min_subscription_ttl", int, 60,
           "Shortest ttl of a subscription, seconds.", minimum=1, maximum=_INT64 // 2),
    Option("limits:transport", "max_subscription_ttl", int, 2**31 - 1,
           "Longest ttl of a subscription, seconds.", minimum=1, maximum=_INT64 // 2),
    Option("limits:transport", "default_subscription_ttl", int, 3600,
           "ttl of a subscription created without one, seconds.", minimum=1,
           maximum=_INT64 // 2),
    Option("limits:transport", "max_pools_per_page", int, 20,
           "Most pools a page of GET /v2/pools may ask for.", minimum=1, maximum=1000),
    Option("limits:transport", "max_flavors_per_page", int, 20,
           "Most flavors a page of GET /v2/flavors may ask for.", minimum=1, maximum=1000),
    Option("limits:transport", "max_pool_uri_length", int, 255,
           "Longest storage URI of a pool (PUT/PATCH /v2/pools), characters.", minimum=1,
           maximum=65536),
    Option("limits:transport", "max_subscriptions_per_page", int, 20,
           "Largest 'limit' of a subscription listing.", minimum=1, maximum=_INT64),
    Option("limits:transport", "max_subscription_body", int, 65536,
           "Largest subscription create or update body, bytes (its options included).",
           minimum=64, maximum=_INT64),
    Option("limits:transport", "max_subscriber_length", int, 2048,
           "Longest subscriber URI, characters.", minimum=16, maximum=65536),
    Option("limits:transport", "subscriber_types", str, "http, https",
           "URI schemes a subscriber may have, comma-separated: http and https (webhooks) "
           "are the ones this server delivers to; others (mailto, trust+http) are refused "
           "with 400."),

    # [limits:storage]: page sizes used when a request gives no 'limit'.
    Option("limits:storage", "default_queue_paging", int, 10,
           "Queues on a page when the request gives no 'limit'.",
           minimum=1, maximum=_INT64),
    Option("limits:storage", "default_message_paging", int, 10,
           "Messages on a page when the request gives no 'limit'.",
           minimum=1, maximum=_INT64),
    Option("limits:storage", "default_claim_limit", int, 10,
           "Messages claimed when the request gives no 'limit'.",
           minimum=1, maximum=_INT64),
    Option("limits:storage", "default_subscription_paging", int, 10,
           "Subscriptions listed when a request gives no 'limit'.", minimum=1,
           maximum=_INT64),
    Option("limits:storage", "default_pool_paging", int, 10,
           "Pools or flavors listed (GET /v2/pools, /v2/flavors) when a request gives "
           "no 'limit'.", minimum=1, maximum=_INT64),

    # [auth]: who a request is (README.rst, "Authentication").
    Option("auth", "strategy", str, "noauth",
           "noauth: X-Project-ID names the project, no credentials (keep the "
           "endpoints on loopback or a unix socket); token: X-Auth-Token checked "
           "against token_file; keystone: X-Auth-Token validated by Keystone "
           "([auth:keystone]).", choices=("noauth", "token", "keystone")),
    Option("auth", "token_file", str, "",
           "File of the token strategy: lines 'sha256:<hex of the token> PROJECT "
           "[ROLE,...]' (python -m marconi_tx.auth.tokens new PROJECT makes one); "
           "read again at SIGHUP."),

    # [signed_url]: pre-signed URLs of API v2 (api-v2.md section 5).
    Option("signed_url", "secret_key", str, "",
           "Key of the HMAC-SHA256 signatures of pre-signed URLs (POST "
           "/v2/queues/{name}/share); keep it secret (empty: no pre-signed URLs, "
           "share answers 400 and signed requests 404)."),

    # [auth:keystone]: [auth] strategy = keystone validates X-Auth-Token with Keystone v3.
    Option("auth:keystone", "url", str, "http://127.0.0.1:5000/v3",
           "Keystone's v3 API (http or https); tokens are validated with GET "
           "{url}/auth/tokens."),
    Option("auth:keystone", "cache_seconds", int, 300,
           "Seconds a valid token's project and roles are remembered (never past "
           "the token's expires_at); a token revoked meanwhile is still accepted "
           "until then. 0: ask Keystone on every request.",
           minimum=0, maximum=MAX_SECONDS),
    Option("auth:keystone", "negative_cache_seconds", int, 10,
           "Seconds a token Keystone refused (401/404, or without a project "
           "scope) is refused without asking again. 0: ask every time.",
           minimum=0, maximum=MAX_SECONDS),
    Option("auth:keystone", "timeout", float, 5.0,
           "Seconds Keystone may take to answer; then (as when it cannot be reached "
           "or fails) the request is answered 503.", minimum=0.001, maximum=3600.0),
    Option("auth:keystone", "max_cached", int, 10000,
           "Most tokens remembered at once (valid and refused); the least recently "
           "used are forgotten first.", minimum=1, maximum=_INT64),
    Option("auth:keystone", "service_user", str, "",
           "Name of the user whose project-scoped token validates client tokens (it "
           "needs Keystone's 'service' role on service_project). Empty: each token "
           "validates itself, as Keystone's default policy allows."),
    Option("auth:keystone", "service_password", str, "",
           "Password of service_user; keep it secret."),
    Option("auth:keystone", "service_project", str, "service",
           "Name of the project service_user's token is scoped to."),
    Option("auth:keystone", "service_domain", str, "Default",
           "Name of the domain of service_user and service_project."),

    # [notification]: deliveries to API v2 subscribers (marconi_tx/notification/notifier.py).
    Option("notification", "delivery", bool, True,
           "Deliver messages to subscribers from this daemon (with --workers: from the "
           "daemon's own process, not its workers). Turn off on all but one of several "
           "daemons sharing a database, or each delivers every message."),
    Option("notification", "require_confirmation", bool, False,
           "New subscriptions get a confirmation request and receive nothing until "
           "confirmed (PUT .../subscriptions/{id}/confirm); needs [signed_url] secret_key."),
    Option("notification", "confirmation_expires", int, 86400,
           "Seconds the pre-signed confirmation URL sent to a subscriber stays valid.",
           minimum=60, maximum=_INT64 // 2),
    Option("notification", "public_endpoint", str, "",
           "Base URL of this API as subscribers reach it (e.g. https://mq.example.net); "
           "when set, confirmation requests carry WSGISubscribeURL."),
    Option("notification", "sweep_interval", float, 2.0,
           "Seconds between walks over every subscription (posts made by other processes "
           "and daemons, retries after a restart, subscriptions created elsewhere).",
           minimum=0.05, maximum=86400.0),
    Option("notification", "max_concurrent_deliveries", int, 10,
           "HTTP requests to subscribers in flight at once (over all subscriptions).",
           minimum=1, maximum=100000),
    Option("notification", "delivery_timeout", float, 10.0,
           "Seconds a subscriber has to answer one delivery (else it is retried).",
           minimum=0.01, maximum=3600.0),
    Option("notification", "delivery_batch", int, 20,
           "Messages one subscription reads from storage at a time.", minimum=1,
           maximum=10000),
    Option("notification", "retries_with_no_delay", int, 3,
           "Default retry policy: retries at once after a failed delivery.",
           minimum=0, maximum=1000),
    Option("notification", "minimum_delay_retries", int, 3,
           "Default retry policy: then retries after minimum_delay each.",
           minimum=0, maximum=1000),
    Option("notification", "minimum_delay", int, 5,
           "Default retry policy: the shortest delay, seconds.", minimum=0, maximum=86400),
    Option("notification", "maximum_delay", int, 30,
           "Default retry policy: the longest delay, seconds.", minimum=0, maximum=86400),
    Option("notification", "maximum_delay_retries", int, 3,
           "Default retry policy: last, retries after maximum_delay each.",
           minimum=0, maximum=1000),
    Option("notification", "retry_backoff_function", str, "linear",
           "Default retry policy: delays between minimum_delay and maximum_delay grow "
           "by this function.", choices=("linear", "arithmetic", "geometric", "exponential")),
)

_KEYS = {(o.section, o.name) for o in OPTIONS}


def load(path=None, overrides=()):
    """
    Build the settings: defaults, then the INI file at ``path`` (if any), then
    ``overrides``, a sequence of ``(section, name, raw_string)``.

    @raise ConfigError: unreadable file, unknown section or option, bad value.
    """
    raw = {}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None, default_section="DEFAULT")
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror}")
        except (configparser.Error, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not a valid INI file ({str(e).splitlines()[0]})")
        for section in parser.sections():
            for name, value in parser.items(section, raw=True):
                if (section, name) not in _KEYS:
                    if name in parser.defaults():
                        continue
                    raise ConfigError(f"{path}: unknown option [{section}] {name}")
                raw[(section, name)] = value
    for section, name, value in overrides:
        raw[(section, name)] = value

    groups = {}
    for opt in OPTIONS:
        value = opt.default
        if (opt.section, opt.name) in raw:
            value = opt.parse(raw[(opt.section, opt.name)])
        groups.setdefault(opt.group, {})[opt.name] = value
    config = SimpleNamespace(**{g: SimpleNamespace(**v) for g, v in groups.items()})
    _check_consistency(config)
    return config


def _check_consistency(config):
    t = config.transport
    for low, high in (("min_message_ttl", "max_message_ttl"),
                      ("min_claim_ttl", "max_claim_ttl"),
                      ("min_claim_grace", "max_claim_grace")):
        if getattr(t, low) > getattr(t, high):
            raise ConfigError(f"[limits:transport] {low} is above {high}")
    for default, low, high in (("default_message_ttl", "min_message_ttl", "max_message_ttl"),
                               ("default_claim_ttl", "min_claim_ttl", "max_claim_ttl"),
                               ("default_claim_grace", "min_claim_grace", "max_claim_grace")):
        if not getattr(t, low) <= getattr(t, default) <= getattr(t, high):
            raise ConfigError(f"[limits:transport] {default} is outside {low}..{high}")
    _check_subscriptions(config)


def _check_subscriptions(config):
    """The subscription settings agree; ``subscriber_types`` becomes a tuple."""
    t = config.transport
    if not t.min_subscription_ttl <= t.default_subscription_ttl <= t.max_subscription_ttl:
        raise ConfigError("[limits:transport] default_subscription_ttl is outside "
                          "min_subscription_ttl..max_subscription_ttl")
    types = tuple(sorted({kind.strip() for kind in t.subscriber_types.split(",")
                          if kind.strip()}))
    unsupported = set(types) - {"http", "https"}
    if not types or unsupported:
        raise ConfigError("[limits:transport] subscriber_types: only http and https are "
                          "delivered to" + (f", not {', '.join(sorted(unsupported))}"
                                            if unsupported else ""))
    t.subscriber_types = types
    n = config.notification
    if n.require_confirmation and not config.signed_url.secret_key:
        raise ConfigError("[notification] require_confirmation needs [signed_url] secret_key "
                          "(the confirmation URL is pre-signed)")
    if n.maximum_delay < n.minimum_delay:
        raise ConfigError("[notification] maximum_delay is below minimum_delay")


def sample():
    """The documented sample configuration (``etc/marconi.conf``)."""
    lines = ["# marconi_tx configuration. Every option is shown with its default.",
             "# Command-line flags (--http, --storage, --line, --gc-interval, --workers)",
             "# override the [drivers] values given here.", ""]
    section = None
    for opt in OPTIONS:
        if opt.section != section:
            if section is not None:
                lines.append("")
            section = opt.section
            lines.append(f"[{section}]")
        lines.append(f"# {opt.help}")
        default = opt.default
        if isinstance(default, bool):
            default = "true" if default else "false"
        lines.append(f"{opt.name} = {default}")
    return "\n".join(lines) + "\n"
