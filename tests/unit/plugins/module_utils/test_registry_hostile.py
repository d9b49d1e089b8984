# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RegistryClient against hostile or broken servers on 127.0.0.1 (real sockets, scripted answers).

Every bad shape ends in one RegistryError line that names the registry and what was wrong;
``timeout`` bounds a trickling body, retry waits and endless pagination.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils import registry_transport
from ansible_collections.dockhand.registry.plugins.module_utils.oci import OCI_INDEX, OCI_MANIFEST
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError
from ansible_collections.dockhand.registry.plugins.module_utils.registry_transport import (
    MAX_ATTEMPTS,
    SMALL_PAGES_ALLOWED,
)
from ansible_collections.dockhand.registry.plugins.modules import registry_repo_info
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.test_registry_client import (
    FakeRegistry,
    client_for,
    new_client,
)
from ansible_collections.dockhand.registry.tests.unit.plugins.modules.module_runner import run_module

DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def registry():
    fake = FakeRegistry()
    yield fake
    fake.close()


def answering(routes):
    """An app answering ``/v2/`` with 200 and ``path -> (status, headers, body)`` for the rest."""
    def app(request):
        path = urlsplit(request["path"]).path
        if path == "/v2/":
            return 200, {}, {}
        return routes.get(path, (404, {}, {"errors": [{"code": "NAME_UNKNOWN"}]}))
    return app


def assert_one_line(exc, registry, *parts):
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    assert registry.host in text, text
    for part in parts:
        assert part in text, text


# ------------------------------------------------------------------ catalog and tag lists

@pytest.mark.parametrize("body, expected", [
    (["a", "b"], "the answer is a list, expected an object with 'repositories'"),
    ({"repositories": 5}, "'repositories' is a number, expected a list"),
    ({"repositories": "abc"}, "'repositories' is a string, expected a list"),
    ({"repositories": [{"name": "a"}]}, "entry 0 of 'repositories' is an object, expected a string"),
    ({"repositories": ["ok", None]}, "entry 1 of 'repositories' is null, expected a string"),
    ({"repositories": ["../../etc"]}, "entry 0 of 'repositories', '../../etc', is not a valid repository name"),
])
def test_hostile_catalog(registry, body, expected):
    registry.app = answering({"/v2/_catalog": (200, {}, body)})
    with pytest.raises(RegistryError) as info:
        client_for(registry).catalog()
    assert_one_line(info.value, registry, "list the catalog", expected)


@pytest.mark.parametrize("body, expected", [
    ({"name": "app", "tags": [{}, None, 5]}, "entry 0 of 'tags' is an object, expected a string"),
    ({"name": "app", "tags": [None]}, "entry 0 of 'tags' is null, expected a string"),
    ({"name": "app", "tags": [5]}, "entry 0 of 'tags' is a number, expected a string"),
    ({"name": "app", "tags": "abc"}, "'tags' is a string, expected a list"),
    ({"name": "app", "tags": {"a": 1}}, "'tags' is an object, expected a list"),
    ({"name": "app", "tags": ["v1", "bad tag"]}, "entry 1 of 'tags', 'bad tag', is not a valid tag"),
    ("just text", "the answer is a string"),
])
def test_hostile_tag_list(registry, body, expected):
    registry.app = answering({"/v2/app/tags/list": (200, {}, json.dumps(body).encode())})
    with pytest.raises(RegistryError) as info:
        client_for(registry).list_tags("app")
    assert_one_line(info.value, registry, "list the tags of app", expected)


def test_tag_list_that_is_not_json(registry):
    registry.app = answering({"/v2/app/tags/list": (200, {}, b"<html>")})
    with pytest.raises(RegistryError) as info:
        client_for(registry).list_tags("app")
    assert_one_line(info.value, registry, "the answer is not JSON")


def test_null_tags_is_an_empty_list(registry):
    registry.app = answering({"/v2/app/tags/list": (200, {}, {"name": "app", "tags": None})})
    assert client_for(registry).list_tags("app") == []


# ------------------------------------------------------------------------ manifests

def manifest_route(document, media_type=OCI_MANIFEST, header_digest=None):
    body = json.dumps(document).encode()
    digest = header_digest or "sha256:" + hashlib.sha256(body).hexdigest()
    return (200, {"Content-Type": media_type, "Docker-Content-Digest": digest}, body)


@pytest.mark.parametrize("document, media_type, expected", [
    ([1, 2], OCI_MANIFEST, "it is a list, expected a JSON object"),
    ({"mediaType": 5, "layers": []}, OCI_MANIFEST, "its mediaType is a number"),
    ({"mediaType": OCI_MANIFEST, "layers": 5}, OCI_MANIFEST, "its 'layers' is a number, expected a list"),
    ({"mediaType": OCI_MANIFEST, "layers": [None]}, OCI_MANIFEST, "entry 0 of 'layers' is null, expected an object"),
    ({"mediaType": OCI_MANIFEST, "config": {"digest": "nope"}}, OCI_MANIFEST,
     "its config has digest 'nope', which is not a digest"),
    ({"mediaType": OCI_MANIFEST, "config": {"digest": DIGEST, "size": "big"}}, OCI_MANIFEST,
     "its config has size 'big', expected a whole number of bytes"),
    ({"mediaType": OCI_INDEX, "manifests": 5}, OCI_INDEX, "its 'manifests' is a number, expected a list"),
    ({"mediaType": OCI_INDEX, "manifests": [{"digest": 7}]}, OCI_INDEX,
     "entry 0 of 'manifests' has digest a number, expected a string"),
    ({"mediaType": OCI_INDEX, "manifests": ["x"]}, OCI_INDEX, "entry 0 of 'manifests' is a string"),
])
def test_hostile_manifest(registry, document, media_type, expected):
    registry.app = answering({"/v2/app/manifests/v1": manifest_route(document, media_type)})
    with pytest.raises(RegistryError) as info:
        client_for(registry).get_manifest("app", "v1")
    assert_one_line(info.value, registry, "get manifest v1 of app", "is malformed", expected)


def test_garbage_digest_header(registry):
    registry.app = answering({"/v2/app/manifests/v1": manifest_route({"layers": []}, header_digest="md5:zz")})
    client = client_for(registry)
    for call in (client.head_manifest, client.get_manifest):
        with pytest.raises(RegistryError) as info:
            call("app", "v1")
        assert_one_line(info.value, registry, "Docker-Content-Digest header 'md5:zz' is not a digest")


# ------------------------------------------------------------------ error bodies

@pytest.mark.parametrize("body", [
    b'{"errors": "boom"}', b'{"errors": [5, null, "x"]}', b'[1, 2]', b'{"errors": [{"code": {"a": 1}}]}',
    b"\xff\xfe not utf-8", b"x" * 5000,
])
def test_hostile_error_bodies(registry, body):
    registry.app = answering({"/v2/app/tags/list": (400, {"Content-Type": "application/json"}, body)})
    with pytest.raises(RegistryError) as info:
        client_for(registry).list_tags("app")
    assert_one_line(info.value, registry, "HTTP 400")
    assert len(str(info.value)) < 1000


# ------------------------------------------------------------------ token answers

@pytest.mark.parametrize("answer, expected", [
    ([1], "the answer is a list, expected an object"),
    ({"token": 5}, "the token is a number, expected a string"),
    ({"token": "a\r\nX-Injected: 1"}, "cannot go in an HTTP header"),
    ({"token": "t", "expires_in": "soon"}, "expires_in is a string, expected a number"),
    ({}, "the answer has no token"),
    (b"not json", "the answer is not JSON"),
])
def test_hostile_token_service(registry, answer, expected):
    def app(request):
        path = urlsplit(request["path"]).path
        if path == "/token":
            return 200, {}, answer
        return 401, {"WWW-Authenticate": 'Bearer realm="%s/token",service="fake"' % registry.url}, \
            {"errors": [{"code": "UNAUTHORIZED"}]}
    registry.app = app
    with pytest.raises(RegistryError) as info:
        client_for(registry).list_tags("app")
    assert_one_line(info.value, registry, "token service", expected)
    assert "a\r\n" not in str(info.value)


# ---------------------------------------------------------------- the module's view

def test_module_fails_with_one_line_on_a_hostile_catalog(monkeypatch, registry):
    registry.app = answering({"/v2/_catalog": (200, {}, {"repositories": [{"name": "a"}]})})
    ok, result = run_module(monkeypatch, registry_repo_info, dict(registry=registry.url))
    assert not ok
    assert_one_line(result["msg"], registry, "entry 0 of 'repositories' is an object")


# ------------------------------------------------------------------------ timeout

class Trickler:
    """A raw HTTP server that sends headers promptly, then its body one byte per ``interval`` seconds."""

    def __init__(self, size=60, interval=1.0):
        self.size = size
        self.interval = interval
        self.sent = 0
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.host = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _address = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            path = request.split(b" ", 2)[1]
            if path == b"/v2/":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
                self._answer(conn)
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % self.size)
            body = b'{"name":"app","tags":[' + b" " * (self.size - 24) + b"]}"
            try:
                for byte in body:
                    if self.stop.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
                    self.sent += 1
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.listener.close()


def test_a_trickled_body_ends_near_timeout():
    trickler = Trickler(size=60, interval=1.0)
    try:
        client = new_client("http://" + trickler.host, timeout=2)
        started = time.monotonic()
        with pytest.raises(RegistryError) as info:
            client.list_tags("app")
        elapsed = time.monotonic() - started
    finally:
        trickler.close()
    assert "did not arrive completely within 2 seconds (timeout)" in str(info.value)
    assert trickler.host in str(info.value)
    # The whole body takes 60 s to trickle; the request gave up near its 2 s deadline.
    assert elapsed < 30 and trickler.sent < 30


def test_retry_after_waits_stay_within_timeout(registry):
    registry.app = answering({"/v2/app/tags/list": (503, {"Retry-After": "3600"}, b"busy")})
    client = client_for(registry, timeout=5)
    with pytest.raises(RegistryError) as info:
        client.list_tags("app")
    assert client.sleeps == []
    assert_one_line(info.value, registry, "HTTP 503", "asked to wait 60 s more, beyond the retry budget of 5 s")
    assert len(registry.requests("GET", "/v2/app/tags")) == 1


def test_retry_after_waits_add_up_to_timeout_at_most(registry):
    registry.app = answering({"/v2/app/tags/list": (503, {"Retry-After": "2"}, b"busy")})
    client = client_for(registry, timeout=5)
    with pytest.raises(RegistryError) as info:
        client.list_tags("app")
    assert client.sleeps == [2.0, 2.0] and sum(client.sleeps) <= 5
    assert_one_line(info.value, registry, "HTTP 503", "(after 3 attempts)")


def test_failures_after_retries_say_how_many_attempts(registry):
    registry.app = answering({"/v2/app/tags/list": (500, {}, b"oops")})
    client = client_for(registry)
    with pytest.raises(RegistryError) as info:
        client.list_tags("app")
    assert_one_line(info.value, registry, "HTTP 500", "(after %d attempts)" % MAX_ATTEMPTS)
    assert len(registry.requests("GET", "/v2/app/tags")) == MAX_ATTEMPTS


def link_app(new_entries):
    """Tag pages whose Link always points one page further; with new entries on each page or the same one."""
    def app(request):
        parts = urlsplit(request["path"])
        if parts.path == "/v2/":
            return 200, {}, {}
        page = int(parse_qs(parts.query).get("last", ["0"])[0])
        tag = "t%d" % page if new_entries else "t0"
        return 200, {"Link": '</v2/app/tags/list?n=1000&last=%d>; rel="next"' % (page + 1)}, \
            {"name": "app", "tags": [tag]}
    return app


def test_link_loop_with_no_new_entries_stops_fast(registry):
    registry.app = link_app(new_entries=False)
    with pytest.raises(RegistryError) as info:
        client_for(registry).list_tags("app")
    assert_one_line(info.value, registry, "3 pages in a row brought no new entry", "broken pagination")
    assert len(registry.requests("GET", "/v2/app/tags")) == 4


def test_endless_link_pagination_is_bounded(monkeypatch, registry):
    monkeypatch.setattr(registry_transport, "MAX_PAGES", 25)
    registry.app = link_app(new_entries=True)
    with pytest.raises(RegistryError) as info:
        client_for(registry).list_tags("app")
    assert_one_line(info.value, registry, "goes on for more than 25 pages (25 entries so far)")
    assert len(registry.requests("GET", "/v2/app/tags")) == 25


def test_tiny_pages_forever_are_taken_for_broken_pagination(registry):
    registry.app = link_app(new_entries=True)
    with pytest.raises(RegistryError) as info:
        client_for(registry).list_tags("app")
    assert_one_line(info.value, registry, "after 100 pages of 1.0 entries on average (1000 asked for)",
                    "pagination is broken")
    assert len(registry.requests("GET", "/v2/app/tags")) == SMALL_PAGES_ALLOWED


def test_credentials_in_the_registry_url_are_never_echoed():
    with pytest.raises(RegistryError) as info:
        new_client("https://admin:s3cret@127.0.0.1:5000")
    assert "s3cret" not in str(info.value) and "admin" not in str(info.value)
    assert "username and password" in str(info.value)
