"""
A real Keystone (the ``keystone`` package, identity API v3) for the tests.

``shared_keystone()`` starts one Keystone per test process, lazily, on a free
loopback port with a sqlite database in a temporary directory, and stops it
when the interpreter exits. It is bootstrapped as ``keystone-manage
bootstrap`` does: user ``admin`` (password ``ADMIN_PASSWORD``) with role
``admin`` on project ``admin``, and the roles ``admin``, ``member`` and
``reader`` (each implying the next). Its helpers create projects, users and
tokens through the v3 API, as an operator would.

One child process does everything (``python -m tests.keystone_server serve
DIR PORT``): ``db_sync``, the key repositories, ``bootstrap``, then Keystone's
WSGI application under wsgiref. Doing the steps in one interpreter imports
Keystone once (about 1.5 s) instead of five times. Keystone parses
``sys.argv`` with oslo.config on import, so the child sets it first.

When Keystone cannot be started the tests skip with the reason, except when
the ``CI`` environment variable is set: there they fail, so a broken set-up
never passes as a green run.
"""

import atexit
import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from twisted.trial.unittest import SkipTest

from tests.mongodb_server import _die_with_parent, _free_port

#: Seconds a starting Keystone may take before it is declared broken.
START_TIMEOUT = 60.0
ADMIN_PASSWORD = "admin-secret"

_CONFIG = """\
[database]
connection = sqlite:///{directory}/keystone.db
[identity]
# The fewest bcrypt rounds: users are created and log in within the tests.
password_hash_rounds = 4
[token]
provider = fernet
[fernet_tokens]
key_repository = {directory}/fernet-keys
[fernet_receipts]
key_repository = {directory}/receipt-keys
[credential]
key_repository = {directory}/credential-keys
"""


class KeystoneUnavailable(Exception):
    """Keystone could not be started or reached (in CI: a failure)."""


def unavailable(reason):
    """Skip the calling test, or fail it when running in CI."""
    if os.environ.get("CI"):
        raise KeystoneUnavailable(reason)
    raise SkipTest(reason)


class KeystoneServer:
    """One Keystone process with its own database and keys."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="marconi-keystone-")
        self.port = None
        self.process = None
        self._admin_token = None

    @property
    def url(self):
        """The v3 API, as ``[auth:keystone] url`` names it."""
        return f"http://127.0.0.1:{self.port}/v3"

    def start(self):
        """Start, bootstrap, and wait until the API answers; KeystoneUnavailable
        if it does not."""
        try:
            import keystone  # noqa: F401
        except ImportError:
            raise KeystoneUnavailable("keystone is not installed (pip install -e '.[test]')")
        self.port = _free_port()
        log_path = os.path.join(self.directory, "keystone.log")
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.keystone_server", "serve", self.directory,
                 str(self.port)],
                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        with open(log_path, "rb") as f:
            tail = f.read()[-3000:].decode("utf-8", "replace")
        raise KeystoneUnavailable(f"Keystone did not answer on port {self.port}; log:\n{tail}")

    def stop(self):
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
            process.wait()

    def destroy(self):
        """Stop and remove the database and keys."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # The v3 API, synchronously (test set-up, before the reactor runs).

    def call(self, method, path, body=None, token=None, headers=()):
        """(status, headers, JSON document or None) of one v3 request, as
        ``token`` (the admin's by default)."""
        request = urllib.request.Request(
            self.url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Content-Type", "application/json")
        request.add_header("X-Auth-Token", token or self.admin_token())
        for name, value in headers:
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, reply_headers, raw = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as e:
            status, reply_headers, raw = e.code, e.headers, e.read()
        return status, reply_headers, json.loads(raw) if raw else None

    def token(self, user_id, password, project_id=None):
        """A new token of the user: scoped to ``project_id``, or unscoped."""
        auth = {"identity": {"methods": ["password"], "password": {
            "user": {"id": user_id, "password": password}}}}
        if project_id is not None:
            auth["scope"] = {"project": {"id": project_id}}
        return self._issue(auth)

    def admin_token(self):
        """A token of the bootstrap ``admin`` on project ``admin`` (admin role)."""
        if self._admin_token is None:
            self._admin_token = self._issue({
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"id": "default"},
                    "password": ADMIN_PASSWORD}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}})
        return self._admin_token

    def _issue(self, auth):
        request = urllib.request.Request(
            self.url + "/auth/tokens?nocatalog", method="POST",
            data=json.dumps({"auth": auth}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.headers["X-Subject-Token"]

    def revoke(self, token):
        """Revoke ``token`` (``DELETE /v3/auth/tokens``)."""
        status, _, _ = self.call("DELETE", "/auth/tokens", headers=[("X-Subject-Token", token)])
        assert status == 204, status

    def role_id(self, name):
        _, _, document = self.call("GET", f"/roles?name={name}")
        return document["roles"][0]["id"]

    def create_project(self, name=None):
        """A new project's id."""
        _, _, document = self.call("POST", "/projects", {"project": {
            "name": name or f"project-{uuid.uuid4().hex[:12]}", "domain_id": "default"}})
        return document["project"]["id"]

    def create_user(self, project_id, role="member", name=None, password=None):
        """(user id, password) of a new user with ``role`` on ``project_id``
        (``role=None``: no role)."""
        password = password or uuid.uuid4().hex
        _, _, document = self.call("POST", "/users", {"user": {
            "name": name or f"user-{uuid.uuid4().hex[:12]}", "domain_id": "default",
            "password": password}})
        user_id = document["user"]["id"]
        if role is not None:
            status, _, _ = self.call(
                "PUT", f"/projects/{project_id}/users/{user_id}/roles/{self.role_id(role)}")
            assert status == 204, status
        return user_id, password

    def project_token(self, role="member"):
        """(project id, token) of a new user with ``role`` on a new project."""
        project_id = self.create_project()
        user_id, password = self.create_user(project_id, role)
        return project_id, self.token(user_id, password, project_id)


_shared = None
_shared_failure = None


def shared_keystone():
    """This run's started ``KeystoneServer``; skips or fails (in CI) the
    calling test if impossible."""
    global _shared, _shared_failure
    if _shared_failure is None and _shared is None:
        server = KeystoneServer()
        try:
            server.start()
        except KeystoneUnavailable as e:
            server.destroy()
            _shared_failure = str(e)
        else:
            _shared = server
            atexit.register(server.destroy)
    if _shared_failure is not None:
        unavailable(_shared_failure)
    return _shared


def _serve(directory, port):
    """The child: set up Keystone in ``directory``, then serve it on ``port``."""
    config_file = os.path.join(directory, "keystone.conf")
    with open(config_file, "w") as f:
        f.write(_CONFIG.format(directory=directory))
    for name in ("fernet-keys", "receipt-keys", "credential-keys"):
        os.makedirs(os.path.join(directory, name), exist_ok=True)
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = config_file
    sys.argv = ["keystone"]

    import keystone.conf
    from keystone.cmd import cli
    from keystone.common import provider_api

    owner = ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name,
             "--keystone-group", grp.getgrgid(os.getgid()).gr_name]
    for command in (["db_sync"], ["fernet_setup", *owner], ["credential_setup", *owner],
                    ["bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
                     "--bootstrap-public-url", f"http://127.0.0.1:{port}/v3"]):
        cli.main(argv=["keystone-manage", "--config-file", config_file, *command])
        # Ready the global configuration for the next command line.
        keystone.conf.CONF.clear()
        keystone.conf.CONF.unregister_opt(cli.command_opt)
    # bootstrap registered and locked the provider APIs; the server does again.
    provider_api.ProviderAPIs._clear_registry_instances()

    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from keystone.server import wsgi

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):
            pass

    server = make_server("127.0.0.1", port, wsgi.initialize_public_application(),
                         handler_class=QuietHandler)
    server.serve_forever()


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(sys.argv[2], int(sys.argv[3]))
