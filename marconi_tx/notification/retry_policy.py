"""The retry policy of deliveries to subscribers (api-v2.md §6.4).

A policy is a dict, ``_retry_policy`` in a queue's metadata or in a
subscription's ``options``; keys it leaves out take the defaults of
``[notification]``. A failed delivery is retried, in four phases, as
upstream Zaqar's webhook task did: ``retries_with_no_delay`` times at once,
``minimum_delay_retries`` times after ``minimum_delay`` seconds each, then
after each delay of the backoff function from ``minimum_delay`` up to
``maximum_delay`` (steps of ``LINEAR_INTERVAL``), and
``maximum_delay_retries`` times after ``maximum_delay`` seconds each. When
they are spent the message is given up on.

Unknown keys are ignored (as upstream did); the known ones are checked.
"""

import math

from marconi_tx.errors import ValidationError

#: The step of the backoff functions, seconds (upstream's LINEAR_INTERVAL).
LINEAR_INTERVAL = 5
COUNTS = ("retries_with_no_delay", "minimum_delay_retries", "maximum_delay_retries")
DELAYS = ("minimum_delay", "maximum_delay")
BACKOFF = "retry_backoff_function"
IGNORE_OVERRIDE = "ignore_subscription_override"
FUNCTIONS = ("linear", "arithmetic", "geometric", "exponential")
#: Bounds of what a client may ask for (the [notification] defaults share them).
MAX_RETRIES = 1000
MAX_DELAY = 86400


def _refuse(problem):
    return ValidationError(f"_retry_policy: {problem}.", title="Invalid retry policy")


def check(policy):
    """Refuse (ValidationError) a ``_retry_policy`` value a client sent."""
    if not isinstance(policy, dict):
        raise _refuse("must be an object")
    for key, high in [(k, MAX_RETRIES) for k in COUNTS] + [(k, MAX_DELAY) for k in DELAYS]:
        if key in policy:
            value = policy[key]
            if type(value) is not int or not 0 <= value <= high:
                raise _refuse(f"{key} must be an integer from 0 to {high}")
    if BACKOFF in policy and policy[BACKOFF] not in FUNCTIONS:
        raise _refuse(f"{BACKOFF} must be one of {', '.join(FUNCTIONS)}")
    if IGNORE_OVERRIDE in policy and type(policy[IGNORE_OVERRIDE]) is not bool:
        raise _refuse(f"{IGNORE_OVERRIDE} must be a boolean")
    if DELAYS[0] in policy or DELAYS[1] in policy:
        low = policy.get("minimum_delay", 5)
        high = policy.get("maximum_delay", 30)
        if high - low < 2 * LINEAR_INTERVAL:
            raise _refuse(f"maximum_delay must be at least minimum_delay + "
                          f"{2 * LINEAR_INTERVAL}")


def defaults(settings):
    """The default policy of ``config.notification``."""
    return {key: getattr(settings, key) for key in (*COUNTS, *DELAYS, BACKOFF)}


def chosen(subscription_policy, queue_policy, default):
    """The policy that applies: the subscription's, else the queue's, unless
    either says ``ignore_subscription_override`` (then the queue's); keys it
    lacks from ``default``. A stored value that no longer passes ``check``
    counts as absent."""
    subscription_policy = _valid(subscription_policy)
    queue_policy = _valid(queue_policy)
    if subscription_policy.get(IGNORE_OVERRIDE) or queue_policy.get(IGNORE_OVERRIDE):
        policy = queue_policy
    else:
        policy = subscription_policy or queue_policy
    return {**default, **{k: v for k, v in policy.items() if k in default}}


def _valid(policy):
    try:
        check(policy)
    except ValidationError:
        return {}
    return policy


def delays(policy):
    """The seconds to wait before each retry, in order (empty: no retry)."""
    low, high = policy["minimum_delay"], policy["maximum_delay"]
    return ([0] * policy["retries_with_no_delay"] + [low] * policy["minimum_delay_retries"]
            + backoff(policy[BACKOFF], low, high)
            + [high] * policy["maximum_delay_retries"])


def backoff(function, low, high):
    """The delays of the backoff phase, upstream's four functions; linear
    where the others are undefined (fewer than two steps, or a zero
    minimum)."""
    steps = (high - low) // LINEAR_INTERVAL
    if function == "linear" or steps < 2 or low <= 0:
        return list(range(low, high, LINEAR_INTERVAL))
    if function == "arithmetic":
        d = 2.0 * (high - low) / (steps * (steps - 1))
        return [int(low + (a - 1) * a * d / 2) for a in range(1, steps + 1)]
    k = math.pow(10, math.log10(high / low) / (steps - 1))
    if function == "geometric":
        return [int(low * math.pow(k, a - 1)) for a in range(1, steps + 1)]
    return [int(low / k * math.pow(k, a)) for a in range(1, steps + 1)]
