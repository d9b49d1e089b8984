# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RegistryClient against a scripted HTTP server on 127.0.0.1 (real sockets, fake registry)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DOCKER_MANIFEST,
    MANIFEST_MEDIA_TYPES,
    normalize_registry_host,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (
    RegistryAuthError,
    RegistryConnectionError,
    RegistryDeleteDisabled,
    RegistryError,
    RegistryNotFound,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_options import RegistrySettings
from ansible_collections.dockhand.registry.plugins.module_utils.registry_transport import MAX_ATTEMPTS, is_loopback_host


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _handle(self):
        body = b""
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if chunked:
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        elif self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        request = dict(method=self.command, path=self.path, headers=dict(self.headers), body=body, chunked=chunked)
        self.server.fake.log.append(request)
        status, headers, payload = self.server.fake.app(request)
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
            headers.setdefault("Content-Type", "application/json")
        payload = payload or b""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _handle


class FakeRegistry:
    """An HTTP server whose answers come from ``app(request) -> (status, headers, body)``."""

    def __init__(self, app=None):
        self.log = []
        self.app = app or (lambda request: (200, {}, {}))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.server.server_address[1]

    @property
    def url(self):
        return "http://" + self.host

    def requests(self, method=None, prefix=""):
        return [r for r in self.log if (method is None or r["method"] == method) and r["path"].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry():
    fake = FakeRegistry()
    yield fake
    fake.close()


@pytest.fixture
def other_host():
    fake = FakeRegistry()
    yield fake
    fake.close()


def errors(code, message="", detail=None):
    return {"errors": [{"code": code, "message": message, "detail": detail}]}


def new_client(registry, sleep=time.sleep, **options):
    """A RegistryClient for ``registry`` with these RegistrySettings options."""
    return RegistryClient(RegistrySettings(registry, **options), sleep=sleep)


def client_for(fake, **kwargs):
    sleeps = []
    kwargs.setdefault("sleep", sleeps.append)
    client = new_client(fake.url, **kwargs)
    client.sleeps = sleeps
    return client


# -------------------------------------------------------------- host and scheme

@pytest.mark.parametrize("host, expected", [
    ("localhost:5000", True), ("127.0.0.1", True), ("127.1.2.3:80", True), ("[::1]:5000", True),
    ("::1", True), ("example.com:5000", False), ("10.0.0.1:5000", False), ("[2001:db8::1]", False),
])
def test_loopback_hosts(host, expected):
    assert is_loopback_host(host) is expected


def test_scheme_candidates_and_docker_hub():
    assert new_client("registry.example.com:5000").transport._candidates == ["https"]
    assert new_client("localhost:5000").transport._candidates == ["https", "http"]
    assert new_client("http://registry.example.com").transport._candidates == ["http"]
    assert new_client("https://127.0.0.1:5000/").transport._candidates == ["https"]
    hub = new_client("docker.io")
    assert (hub.host, hub.transport._candidates) == ("registry-1.docker.io", ["https"])
    assert normalize_registry_host("https://Index.Docker.io/v1/") == "registry-1.docker.io"
    assert normalize_registry_host("127.0.0.1:5000") == "127.0.0.1:5000"


@pytest.mark.parametrize("kwargs, message", [
    (dict(registry="ftp://x"), "only http:// and https://"),
    (dict(registry="127.0.0.1:5000", username="u"), "username and password"),
    (dict(registry="127.0.0.1:5000", concurrency=0), "concurrency"),
])
def test_bad_client_options(kwargs, message):
    with pytest.raises(RegistryError, match=message):
        RegistryClient(RegistrySettings(**kwargs))


@pytest.mark.parametrize("registry", [
    "htps://user:secret@registry.example",
    "https://user:secret@registry.example/v2",
    "user:secret@registry.example:5000",
])
def test_registry_with_credentials_is_refused_without_echoing_them(registry):
    with pytest.raises(RegistryError, match="must not hold credentials") as info:
        RegistryClient(RegistrySettings(registry))
    assert "secret" not in str(info.value)


def test_unsupported_scheme_error_gives_the_scheme_only():
    with pytest.raises(RegistryError, match="only http:// and https://") as info:
        RegistryClient(RegistrySettings("ftp://registry.example/some/path?token=secret"))
    assert "'ftp'" in str(info.value) and "secret" not in str(info.value) and "registry.example" not in str(info.value)


def test_bare_loopback_host_falls_back_to_plain_http(registry):
    registry.app = lambda r: (200, {}, {"repositories": ["a"]} if "_catalog" in r["path"] else {})
    client = new_client(registry.host)
    assert client.catalog() == ["a"]
    assert client.base_url == registry.url


@pytest.fixture
def ca_loads(monkeypatch):
    """Every CA bundle an SSL context loads during the test: "system" for the default one, else the file."""
    loaded = []
    load_default_certs = ssl.SSLContext.load_default_certs
    load_verify_locations = ssl.SSLContext.load_verify_locations

    def counting_default(self, *args, **kwargs):
        loaded.append("system")
        return load_default_certs(self, *args, **kwargs)

    def counting_verify(self, cafile=None, *args, **kwargs):
        loaded.append(cafile)
        return load_verify_locations(self, cafile, *args, **kwargs)
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", counting_default)
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting_verify)
    return loaded


def write_ca_and_server_cert(folder):
    """A CA and a certificate for 127.0.0.1 signed by it; returns (ca.pem, server.pem, server.key)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    import datetime
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, key, issuer, issuer_key, extensions):
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.OID_COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(x509.OID_COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("unit test CA", ca_key, "unit test CA", ca_key, [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)])
    key = ec.generate_private_key(ec.SECP256R1())
    server = certificate("127.0.0.1", key, "unit test CA", ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    paths = [str(folder / name) for name in ("ca.pem", "server.pem", "server.key")]
    for path, data in zip(paths, (ca.public_bytes(serialization.Encoding.PEM),
                                  server.public_bytes(serialization.Encoding.PEM),
                                  key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))):
        with open(path, "wb") as handle:
            handle.write(data)
    return paths


@pytest.fixture
def tls_registry(tmp_path):
    ca_path, cert_path, key_path = write_ca_and_server_cert(tmp_path)
    fake = FakeRegistry(lambda r: (200, {}, {"repositories": ["a"]} if "_catalog" in r["path"] else {}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    fake.server.socket = context.wrap_socket(fake.server.socket, server_side=True)
    fake.ca_path = ca_path
    yield fake
    fake.close()


def test_http_loopback_registry_is_reached_without_loading_a_ca_bundle(registry, ca_loads):
    registry.app = lambda r: (200, {}, {"repositories": ["a"]} if "_catalog" in r["path"] else {})
    client = new_client(registry.host)
    assert client.catalog() == ["a"]
    assert client.base_url == registry.url
    assert ca_loads == []
    assert [r["path"] for r in registry.log] == ["/v2/", "/v2/_catalog?n=1000"]


def test_tls_loopback_registry_is_still_verified(tls_registry, ca_loads):
    with pytest.raises(RegistryConnectionError, match="certificate verify failed"):
        new_client(tls_registry.host, timeout=10).catalog()
    assert ca_loads == ["system"]
    assert tls_registry.log == []
    del ca_loads[:]
    client = new_client(tls_registry.host, ca_cert=tls_registry.ca_path, timeout=10)
    assert client.catalog() == ["a"]
    assert client.base_url == "https://" + tls_registry.host
    assert ca_loads == [tls_registry.ca_path]
    assert [r["path"] for r in tls_registry.log] == ["/v2/", "/v2/_catalog?n=1000"]


def test_from_params_with_prefix_falls_back_but_not_for_credentials(registry):
    params = dict(registry="127.0.0.1:1", username="target-user", password="pw", timeout=7, concurrency=3,
                  validate_certs=True, ca_cert=None, client_cert=None, client_key=None, docker_config=None,
                  source_registry=registry.host, source_username=None, source_password=None)
    client = RegistryClient.from_params(params, prefix="source_")
    assert client.host == registry.host
    assert (client.timeout, client.concurrency) == (7, 3)
    assert client.transport.auth.credentials is None
    assert RegistryClient.from_params(params, prefix="source_", registry="other:5000").host == "other:5000"


# ------------------------------------------------------------------ pagination

def paged_catalog(names, max_entries):
    def app(request):
        parts = urlsplit(request["path"])
        if parts.path == "/v2/":
            return 200, {}, {}
        query = parse_qs(parts.query)
        n = int(query.get("n", ["100"])[0])
        if n > max_entries:
            return 400, {}, errors("PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": n})
        last = query.get("last", [None])[0]
        start = names.index(last) + 1 if last else 0
        page = names[start:start + n]
        headers = {}
        if start + n < len(names):
            headers["Link"] = '</v2/_catalog?last=%s&n=%d>; rel="next"' % (page[-1], n)
        return 200, headers, {"repositories": page}
    return app


def test_catalog_follows_relative_links_and_shrinks_the_page(registry):
    names = ["repo%02d" % i for i in range(25)]
    registry.app = paged_catalog(names, max_entries=10)
    client = client_for(registry)
    assert client.catalog(page_size=16) == names
    asked = [int(parse_qs(urlsplit(r["path"]).query)["n"][0]) for r in registry.requests("GET", "/v2/_catalog")]
    assert asked[0] == 16 and set(asked[1:]) == {8}
    assert len(asked) == 1 + 4  # one refused page, then 8 + 8 + 8 + 1


def test_tag_list_absolute_link_unknown_repository_and_no_tags(registry):
    def app(request):
        path = request["path"]
        if path.startswith("/v2/app/tags/list"):
            if "last=b" in path:
                return 200, {}, {"name": "app", "tags": ["c"]}
            return 200, {"Link": '<%s/v2/app/tags/list?n=1000&last=b>; rel="next"' % registry.url}, \
                {"name": "app", "tags": ["a", "b"]}
        if path.startswith("/v2/empty/tags/list"):
            return 200, {}, {"name": "empty", "tags": None}
        if path.startswith("/v2/nope/"):
            return 404, {}, errors("NAME_UNKNOWN", "repository name not known to registry", {"name": "nope"})
        return 200, {}, {}
    registry.app = app
    client = client_for(registry)
    assert client.list_tags("app") == ["a", "b", "c"]
    assert client.list_tags("empty") == []
    with pytest.raises(RegistryNotFound) as info:
        client.list_tags("nope")
    assert info.value.code == "NAME_UNKNOWN" and info.value.status == 404
    assert "repository not found" in str(info.value) and "nope" in str(info.value)


# ----------------------------------------------------------- retries and errors

def test_retries_on_503_and_429_honor_retry_after(registry):
    answers = [(503, {"Retry-After": "2"}, b"busy"), (429, {"Retry-After": "0"}, errors("TOOMANYREQUESTS"))]

    def app(request):
        if request["path"].startswith("/v2/app/tags"):
            if answers:
                return answers.pop(0)
            return 200, {}, {"tags": ["x"]}
        return 200, {}, {}
    registry.app = app
    client = client_for(registry)
    assert client.list_tags("app") == ["x"]
    assert client.sleeps == [2.0, 0.0]


def test_retries_are_bounded(registry):
    registry.app = lambda r: (429, {}, errors("TOOMANYREQUESTS", "slow down")) if "tags" in r["path"] else (200, {}, {})
    client = client_for(registry)
    with pytest.raises(RegistryError) as info:
        client.list_tags("app")
    assert info.value.code == "TOOMANYREQUESTS"
    assert "too many requests" in str(info.value)
    assert len(registry.requests("GET", "/v2/app/tags")) == MAX_ATTEMPTS
    assert len(client.sleeps) == MAX_ATTEMPTS - 1 and all(0 < s <= 60 for s in client.sleeps)


def test_delete_disabled_names_the_fix(registry):
    registry.app = lambda r: (405, {}, errors("UNSUPPORTED", "The operation is unsupported.")) \
        if r["method"] == "DELETE" else (200, {}, {})
    client = client_for(registry)
    with pytest.raises(RegistryDeleteDisabled) as info:
        client.delete_manifest("app", "sha256:" + "a" * 64)
    text = str(info.value)
    assert "storage.delete.enabled: true" in text and "REGISTRY_STORAGE_DELETE_ENABLED=true" in text
    assert (info.value.status, info.value.code) == (405, "UNSUPPORTED")


def test_error_messages_are_one_line(registry):
    registry.app = lambda r: (500, {}, errors("UNKNOWN", "line one\nline two")) if "tags" in r["path"] else (200, {}, {})
    client = client_for(registry)
    with pytest.raises(RegistryError) as info:
        client.list_tags("app")
    assert "\n" not in str(info.value) and "line one line two" in str(info.value)


def test_connection_refused_is_one_clear_line():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RegistryConnectionError) as info:
        new_client("127.0.0.1:%d" % port, timeout=5).catalog()
    assert "connection refused" in str(info.value) and "127.0.0.1:%d" % port in str(info.value)


def basic_app(user, password, inner):
    expected = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    def app(request):
        if request["headers"].get("Authorization") != expected:
            return 401, {"WWW-Authenticate": 'Basic realm="fake"'}, errors("UNAUTHORIZED", "authentication required")
        return inner(request)
    return app


def test_basic_auth_and_wrong_password(registry):
    registry.app = basic_app("u", "right", lambda r: (200, {}, {"repositories": ["a"]}))
    assert client_for(registry, username="u", password="right").catalog() == ["a"]
    with pytest.raises(RegistryAuthError, match="rejected the credentials of user 'u'"):
        client_for(registry, username="u", password="wrong").catalog()
    with pytest.raises(RegistryAuthError, match="requires authentication"):
        client_for(registry).catalog()


# ------------------------------------------------------------------ bearer flow

def test_bearer_flow_scopes_cache_and_insufficient_scope(registry):
    issued = []

    def app(request):
        parts = urlsplit(request["path"])
        if parts.path == "/token":
            query = parse_qs(parts.query)
            token = "T%d:%s" % (len(issued), " ".join(sorted(query.get("scope", []))))
            issued.append(token)
            return 200, {}, {"token": token, "expires_in": 300}
        challenge = 'Bearer realm="%s/token",service="fake"' % registry.url
        auth = request["headers"].get("Authorization", "")
        if parts.path == "/v2/":
            return (200, {}, {}) if auth.startswith("Bearer ") else (401, {"WWW-Authenticate": challenge}, {})
        if parts.path == "/v2/_catalog":
            if "registry:catalog:*" not in auth:
                return 401, {"WWW-Authenticate": challenge + ',scope="registry:catalog:*"'}, errors("UNAUTHORIZED")
            return 200, {}, {"repositories": ["a"]}
        if parts.path == "/v2/a/tags/list":
            # This registry also wants pull on a second repository (as a proxy might).
            if "repository:b:pull" not in auth:
                return 401, {"WWW-Authenticate": challenge + ',scope="repository:b:pull",error="insufficient_scope"'}, \
                    errors("DENIED")
            return 200, {}, {"tags": ["t"]}
        return 404, {}, errors("NAME_UNKNOWN")
    registry.app = app
    client = client_for(registry, username="u", password="p")
    assert client.catalog() == ["a"]
    assert client.catalog() == ["a"]
    assert issued == ["T0:registry:catalog:*"]
    assert client.list_tags("a") == ["t"]
    assert issued[1:] == ["T1:repository:a:pull", "T2:repository:a:pull repository:b:pull"]
    token_request = registry.requests("GET", "/token")[0]
    assert token_request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert "service=fake" in token_request["path"] and "account=u" in token_request["path"]


# ------------------------------------------------------------------- manifests

MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
               "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 5,
                "digest": "sha256:" + hashlib.sha256(b"layer").hexdigest()}],
}, indent=3).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def manifest_app(body=MANIFEST, header_digest=MANIFEST_DIGEST, head_digest=True):
    def app(request):
        if "/manifests/" in request["path"]:
            headers = {"Content-Type": DOCKER_MANIFEST}
            if header_digest and (request["method"] != "HEAD" or head_digest):
                headers["Docker-Content-Digest"] = header_digest
            if request["method"] == "HEAD":
                headers["Content-Length"] = str(len(body))
            return 200, headers, body
        return 200, {}, {}
    return app


def test_get_manifest_keeps_exact_bytes_and_sends_all_accept_types(registry):
    registry.app = manifest_app()
    client = client_for(registry)
    manifest = client.get_manifest("app", "v1")
    assert manifest.body == MANIFEST and manifest.digest == MANIFEST_DIGEST
    assert not manifest.is_index and [d["size"] for d in manifest.blob_descriptors] == [2, 5]
    accept = registry.requests("GET", "/v2/app/manifests")[0]["headers"]["Accept"]
    assert all(media_type in accept for media_type in MANIFEST_MEDIA_TYPES)
    assert client.get_manifest("app", MANIFEST_DIGEST).digest == MANIFEST_DIGEST


def test_manifest_digest_is_verified(registry):
    registry.app = manifest_app(body=MANIFEST + b" ")
    client = client_for(registry)
    with pytest.raises(RegistryError, match="has digest sha256:"):
        client.get_manifest("app", MANIFEST_DIGEST)
    with pytest.raises(RegistryError, match="expected " + MANIFEST_DIGEST):
        client.get_manifest("app", "v1")


def test_head_without_digest_header_falls_back_to_get(registry):
    registry.app = manifest_app(head_digest=False)
    head = client_for(registry).head_manifest("app", "v1")
    assert (head.digest, head.media_type, head.size) == (MANIFEST_DIGEST, DOCKER_MANIFEST, len(MANIFEST))
    assert [r["method"] for r in registry.requests(prefix="/v2/app")] == ["HEAD", "GET"]


def test_absent_manifest(registry):
    registry.app = lambda r: (404, {}, errors("MANIFEST_UNKNOWN", "manifest unknown")) \
        if "/manifests/" in r["path"] else (200, {}, {})
    client = client_for(registry)
    assert client.head_manifest("app", "v1") is None
    assert client.get_manifest("app", "v1") is None
    with pytest.raises(RegistryNotFound, match="manifest not found"):
        client.delete_manifest("app", MANIFEST_DIGEST)


def test_put_manifest_sends_the_bytes_unchanged(registry):
    registry.app = lambda r: (201, {"Docker-Content-Digest": MANIFEST_DIGEST}, b"") \
        if r["method"] == "PUT" else (200, {}, {})
    assert client_for(registry).put_manifest("app", "v2", MANIFEST, DOCKER_MANIFEST) == MANIFEST_DIGEST
    put = registry.requests("PUT")[0]
    assert put["body"] == MANIFEST and put["headers"]["Content-Type"] == DOCKER_MANIFEST


# ----------------------------------------------------------------------- blobs

LAYER = b"layer" * 300000
LAYER_DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()


def test_blob_redirect_to_another_host_drops_authorization(registry, other_host):
    other_host.app = lambda r: (200, {}, LAYER) if r["path"].startswith("/storage") else (404, {}, b"")

    def inner(request):
        if request["path"].startswith("/v2/app/blobs/"):
            return 307, {"Location": other_host.url + "/storage/blob?sig=x"}, b""
        return 200, {}, {}
    registry.app = basic_app("u", "p", inner)
    client = client_for(registry, username="u", password="p")
    with client.open_blob("app", LAYER_DIGEST) as (chunks, size):
        assert size == len(LAYER)
        assert b"".join(chunks) == LAYER
    assert registry.requests("GET", "/v2/app/blobs/")[-1]["headers"]["Authorization"].startswith("Basic ")
    [storage] = other_host.requests("GET", "/storage")
    assert "Authorization" not in storage["headers"]


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("storage_url", [
    "http://127.0.0.1:{closed}/bucket/x?X-Amz-Signature=SECRET&X-Amz-Credential=SECRET#SECRET",
    # TLS to a port that speaks plain http: the TLS error message names the URL.
    "https://{other}/bucket/x?sv=2022&sig=SECRET",
])
def test_failing_redirect_to_object_storage_does_not_show_the_signature(registry, other_host, storage_url):
    location = storage_url.format(closed=closed_port(), other=urlsplit(other_host.url).netloc)
    registry.app = lambda r: (307, {"Location": location}, b"") if "/blobs/" in r["path"] else (200, {}, {})
    client = client_for(registry)
    with pytest.raises(RegistryError) as info:
        with client.open_blob("app", LAYER_DIGEST):
            pass
    message = str(info.value)
    assert "SECRET" not in message and "/bucket/x" in message


def test_streamed_blob_digest_is_verified(registry):
    registry.app = lambda r: (200, {}, LAYER + b"!") if "/blobs/" in r["path"] else (200, {}, {})
    client = client_for(registry)
    with pytest.raises(RegistryError, match="content has digest"):
        with client.open_blob("app", LAYER_DIGEST) as (chunks, _size):
            for _chunk in chunks:
                pass


def test_upload_blob_is_streamed_with_content_length(registry):
    def app(request):
        if request["method"] == "POST":
            return 202, {"Location": "/v2/app/blobs/uploads/u-1?_state=abc"}, b""
        if request["method"] == "PUT":
            return 201, {"Docker-Content-Digest": LAYER_DIGEST}, b""
        return 200, {}, {}
    registry.app = app
    client = client_for(registry)
    chunks = (LAYER[i:i + 65536] for i in range(0, len(LAYER), 65536))
    client.upload_blob("app", LAYER_DIGEST, chunks, len(LAYER))
    [put] = registry.requests("PUT")
    query = parse_qs(urlsplit(put["path"]).query)
    assert query == {"_state": ["abc"], "digest": [LAYER_DIGEST]}
    assert not put["chunked"] and put["headers"]["Content-Length"] == str(len(LAYER))
    assert put["body"] == LAYER


def test_mount_blob_cancels_an_opened_upload(registry):
    def app(request):
        if request["method"] == "POST" and "from=src" in request["path"]:
            if "mount=sha256%3A" + "1" * 64 in request["path"]:
                return 201, {"Location": "/v2/app/blobs/x"}, b""
            return 202, {"Location": "/v2/app/blobs/uploads/u-2"}, b""
        return 204 if request["method"] == "DELETE" else 200, {}, b"{}"
    registry.app = app
    client = client_for(registry)
    assert client.mount_blob("app", "sha256:" + "1" * 64, "src") is True
    assert client.mount_blob("app", "sha256:" + "2" * 64, "src") is False
    assert [r["path"] for r in registry.requests("DELETE")] == ["/v2/app/blobs/uploads/u-2"]


def test_blob_exists(registry):
    registry.app = lambda r: (404, {}, b"") if "2222" in r["path"] else (200, {}, b"")
    client = client_for(registry)
    assert client.blob_exists("app", "sha256:" + "1" * 64) is True
    assert client.blob_exists("app", "sha256:" + "2" * 64) is False


# ---------------------------------------------------------------- concurrency

def test_map_bounded_keeps_order_and_bounds_threads():
    client = new_client("127.0.0.1:1", concurrency=3)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def work(item):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        return item * 2

    assert client.map_bounded(work, range(20)) == [i * 2 for i in range(20)]
    assert state["peak"] <= 3


def test_map_bounded_raises_the_first_error():
    client = new_client("127.0.0.1:1", concurrency=4)
    done = []

    def work(item):
        if item == 3:
            raise RegistryNotFound("item 3 is missing")
        time.sleep(0.05)
        done.append(item)
        return item

    with pytest.raises(RegistryNotFound, match="item 3"):
        client.map_bounded(work, range(40))
    assert len(done) < 40  # the rest was cancelled


def test_delete_answered_404_after_a_retried_5xx_is_unclear(registry):
    # distribution 2.8 answers 500 after removing the manifest but before untagging: the tags may dangle.
    answers = [(500, {"Retry-After": "0"}, errors("DIGEST_INVALID", "invalid checksum digest format"))]

    def app(request):
        if request["method"] == "DELETE":
            return answers.pop(0) if answers else (404, {}, errors("MANIFEST_UNKNOWN"))
        return 200, {}, {}
    registry.app = app
    assert client_for(registry).delete_manifest("app", MANIFEST_DIGEST) is False
    assert len(registry.requests("DELETE")) == 2


def test_delete_confirmed_by_the_registry(registry):
    registry.app = lambda request: (202, {}, b"") if request["method"] == "DELETE" else (200, {}, {})
    assert client_for(registry).delete_manifest("app", MANIFEST_DIGEST) is True


def test_messages_name_the_prefixed_options_of_a_source_registry():
    params = dict(registry="127.0.0.1:5000", source_username="someone")
    with pytest.raises(RegistryError, match="^source_username and source_password must be given together$"):
        RegistryClient.from_params(params, prefix="source_", registry="127.0.0.1:5001")
    client = RegistryClient.from_params(dict(registry="127.0.0.1:5000"), prefix="source_", registry="127.0.0.1:5001")
    assert "set source_ca_cert" in client.transport._tls_message("https://127.0.0.1:5001/v2/", Exception("certificate verify failed"))
    assert "source_validate_certs: false" in client.transport._tls_message("https://x/v2/", Exception("certificate verify failed"))
    assert "set source_username and source_password" in str(client.transport.auth._missing_credentials())
