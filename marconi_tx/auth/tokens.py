"""The ``token`` strategy: bearer tokens from a file, stored hashed.

The file (``[auth] token_file``) holds one token a line::

    # comment lines and blank lines are ignored
    sha256:<64 hex digits> <project> [<role>[,<role>...]]

The hash is the SHA-256 of the token's UTF-8 bytes, so a line is made
without this package: ``printf %s "$TOKEN" | sha256sum``, or with
``python -m marconi_tx.auth.tokens new PROJECT [ROLES]``, which also makes
the token (32 random bytes, URL-safe base 64). Roles are lower-cased;
``admin`` may name any project and use the admin routes. A token's plain
text is never kept, written or logged, and an error in the file is reported
by line number only.

Checking a token costs one SHA-256 and one dict lookup. It is timing-safe
without a constant-time comparison: the lookup compares the hash of what the
client sent, and learning how much of it matches a stored hash tells the
client nothing it can use without a SHA-256 preimage.

``reload`` (SIGHUP) reads the file again; a file that cannot be read or has
an error keeps the tokens already loaded and logs the error.
"""

import hashlib
import secrets
import sys

from twisted.logger import Logger
from zope.interface import implementer

from marconi_tx.auth.identity import Identity
from marconi_tx.auth.interfaces import IAuthStrategy

PREFIX = "sha256:"
_HEX = frozenset("0123456789abcdef")


class TokenFileError(Exception):
    """The token file cannot be read or has an error; the message says where."""


def token_hash(token):
    """The hex SHA-256 a token file records for ``token`` (str)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse(text, path="token file"):
    """{sha256 digest (bytes): Identity} of the token file ``text``;
    TokenFileError naming the first bad line."""
    tokens = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}, line {number}"
        digest = fields[0].lower()
        if not digest.startswith(PREFIX):
            raise TokenFileError(f"{where}: a line starts with sha256:<hex digest>")
        digest = digest[len(PREFIX):]
        if len(digest) != 64 or not _HEX.issuperset(digest):
            raise TokenFileError(f"{where}: the digest is not 64 hex digits")
        if len(fields) not in (2, 3):
            raise TokenFileError(f"{where}: expected sha256:<hex> PROJECT [ROLE,...]")
        roles = frozenset(r.lower() for r in fields[2].split(",") if r) if len(fields) == 3 \
            else frozenset()
        key = bytes.fromhex(digest)
        if key in tokens:
            raise TokenFileError(f"{where}: the same token is listed twice")
        tokens[key] = Identity(fields[1], roles)
    return tokens


def read(path):
    """``parse`` of the file at ``path``; TokenFileError."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise TokenFileError(f"cannot read {path}: {e.strerror}")
    except UnicodeDecodeError:
        raise TokenFileError(f"{path} is not UTF-8")
    return parse(text, path)


@implementer(IAuthStrategy)
class TokenStrategy:
    """Tokens of the file at ``path``, read now (TokenFileError) and again
    by ``reload``."""

    log = Logger()

    def __init__(self, path):
        self.path = path
        self.tokens = read(path)

    def authenticate(self, token):
        try:
            data = token.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no file line can name it
            return None
        return self.tokens.get(hashlib.sha256(data).digest())

    def reload(self):
        """Read the file again; on an error keep the tokens and log it."""
        try:
            tokens = read(self.path)
        except TokenFileError as e:
            self.log.error("Token file not reloaded, {count} tokens kept: {error}",
                           count=len(self.tokens), error=str(e))
            return
        self.tokens = tokens
        self.log.info("Token file reloaded: {count} tokens", count=len(tokens))


def main(argv, out=sys.stdout, stdin=sys.stdin):
    """``python -m marconi_tx.auth.tokens``: ``new PROJECT [ROLES]`` makes a
    token and prints it and its file line; ``hash PROJECT [ROLES]`` prints
    the file line of a token read from standard input."""
    usage = ("usage: python -m marconi_tx.auth.tokens new|hash PROJECT [ROLE,...]\n"
             "  new:  make a random token; print it, then its token file line\n"
             "  hash: print the token file line of the token read from standard input\n")
    if len(argv) not in (2, 3) or argv[0] not in ("new", "hash") or not argv[1].strip() \
            or any(c.isspace() for c in "".join(argv[1:])):
        sys.stderr.write(usage)
        return 2
    roles = [argv[2]] if len(argv) == 3 else []
    if argv[0] == "new":
        token = secrets.token_urlsafe(32)
        out.write(token + "\n")
    else:
        token = stdin.readline().rstrip("\r\n")
        if not token:
            sys.stderr.write("no token on standard input\n")
            return 2
    out.write(" ".join([PREFIX + token_hash(token), argv[1], *roles]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
