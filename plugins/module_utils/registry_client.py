# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry HTTP API v2 client shared by the registry_* modules.

Contract (stable names; other modules code against exactly these)::

    registry_client.py:
      class RegistryError(Exception)            # .status (int|None), .code (str|None); str(exc) is one readable line
      class RegistryNotFound(RegistryError)     # NAME_UNKNOWN / MANIFEST_UNKNOWN / BLOB_UNKNOWN / 404
      class RegistryDeleteDisabled(RegistryError)  # 405 UNSUPPORTED on delete; message names storage.delete.enabled: true
                                                   #   / REGISTRY_STORAGE_DELETE_ENABLED=true
      def registry_argument_spec() -> dict      # registry (required), username, password (no_log), docker_config,
                                                #   validate_certs (default true), ca_cert, client_cert, client_key, timeout, concurrency
      def require_registry_libraries(module)    # missing_required_lib('requests')
      MANIFEST_MEDIA_TYPES (OCI index, OCI manifest, Docker manifest list, Docker v2 manifest)
      class ManifestHead:  digest, media_type, size
      class Manifest:      digest, media_type, body (exact bytes), size, data (parsed dict); properties is_index,
                           child_descriptors (index entries), blob_descriptors (config + layers of an image manifest)
      class RegistryClient:
          @classmethod from_params(cls, params, prefix="")   # prefix lets a module build a second client from source_* options
          host (str, e.g. 127.0.0.1:5000), base_url
          catalog(page_size=None) -> list[str]      # follows Link, shrinks page on PAGINATION_NUMBER_INVALID
          list_tags(repository) -> list[str]        # raises RegistryNotFound for unknown repo; [] if no tags
          head_manifest(repository, reference) -> ManifestHead | None
          get_manifest(repository, reference) -> Manifest | None   # digest verified (sha256 of raw body)
          put_manifest(repository, reference, body: bytes, media_type) -> str digest
          delete_manifest(repository, digest) -> None
          repository_request(method, repository, parts, what, query=None, ok=(200,)) -> HttpResponse   # referrers API, tag delete
          blob_exists(repository, digest) -> bool
          mount_blob(repository, digest, source_repository) -> bool   # False if the registry opened an upload instead (cancel that upload)
          get_blob_json(repository, digest) -> dict                   # small JSON blobs (image config)
          open_blob(repository, digest)  -> context manager yielding (iterator of bytes chunks, size)   # streamed
          upload_blob(repository, digest, chunks_iterable, size) -> None   # streamed, never whole in memory
          map_bounded(func, items) -> list          # runs func over items on at most `concurrency` threads sharing the keep-alive pool;
                                                    #   preserves order; re-raises the first error

"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import json
import random
import re
import socket
import ssl
import threading
import time
import traceback
import warnings
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.dockhand.registry.plugins.module_utils.http_body import (
    MAX_BODY_BYTES,
    BodyDeadline,
    BodyTooLarge,
    read_body,
)
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ReferenceError as ImageReferenceError,
    validate_digest,
    validate_repository,
    validate_tag,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_answers import (
    AnswerError,
    check_manifest,
    page_names,
    quoted,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_auth import (
    DOCKER_HUB_HOSTS,
    Credentials,
    RegistryAuth,
    credentials_from_docker_config,
    parse_link_header,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (  # noqa: F401 (re-exported, see __all__)
    DELETE_FIX,
    RegistryAuthError,
    RegistryConnectionError,
    RegistryDeleteDisabled,
    RegistryError,
    RegistryInterrupted,
    RegistryNotFound,
    error_from_response,
    one_line,
    parse_error_body,
    unexpected_failure,
)

from ansible_collections.dockhand.registry.plugins.module_utils.stop_request import StopRequest
from ansible_collections.dockhand.registry.plugins.module_utils.write_gate import (
    DELETE,
    PUT,
    RepositoryGates,
)

__all__ = [
    "DELETE_FIX", "DOCKER_MANIFEST", "DOCKER_MANIFEST_LIST", "MANIFEST_MEDIA_TYPES", "OCI_INDEX", "OCI_MANIFEST",
    "HttpResponse", "Manifest", "ManifestHead", "RegistryAuthError", "RegistryClient", "RegistryConnectionError",
    "RegistryDeleteDisabled", "RegistryError", "RegistryInterrupted", "RegistryNotFound", "compute_digest", "is_loopback_host",
    "manifest_reference_argument_spec", "normalize_registry_host", "registry_argument_spec",
    "require_registry_libraries", "sha256_digest", "unexpected_failure", "validate_manifest_reference",
]

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    import urllib3
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import InsecureRequestWarning

    _SSL_ERRORS = (requests.exceptions.SSLError, urllib3.exceptions.SSLError)
    _TIMEOUT_ERRORS = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)
    # urllib3 2.x makes NewConnectionError (refused, unreachable) a subclass of ConnectTimeoutError.
    _REFUSED_ERRORS = (urllib3.exceptions.NewConnectionError,)
    _CONNECTION_ERRORS = (requests.exceptions.ConnectionError, urllib3.exceptions.HTTPError, OSError)
except ImportError:
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    requests = None

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)

DOCKER_HUB_API_HOST = "registry-1.docker.io"
DEFAULT_TIMEOUT = 60
DEFAULT_CONCURRENCY = 8
# distribution's default catalog.maxentries; bigger pages get 400 PAGINATION_NUMBER_INVALID.
DEFAULT_PAGE_SIZE = 1000
# A real registry sends at most a few hundred pages (1,000 entries each); a broken one that
# keeps sending Link headers hits this bound in seconds.
MAX_PAGES = 1000
# Pages in a row that bring no new entry: a Link loop with changing URLs.
MAX_EMPTY_PAGES = 3
# Real registries send pages of 50 to 1,000 entries; after this many pages averaging fewer than
# MIN_PAGE_ENTRIES, the Link header is taken for broken (tiny pages forever), long before MAX_PAGES.
SMALL_PAGES_ALLOWED = 100
MIN_PAGE_ENTRIES = 10
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.5
# Longest single wait between attempts; all waits of one request together stay within ``timeout``.
MAX_RETRY_WAIT = 60.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_REDIRECTS = 5
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_JSON_BLOB_BYTES = 16 * 1024 * 1024
BLOB_CHUNK_SIZE = 1024 * 1024
USER_AGENT = "dockhand.registry"
DOCKER_CERTS_DIR = "/etc/docker/certs.d"
# First bytes a TLS server answers a ClientHello with: record type (handshake or alert), then version 3.x.
TLS_RECORD_TYPES = (0x15, 0x16)
TLS_RECORD_HEADER_SIZE = 5


def registry_argument_spec() -> dict:
    """The connection options documented in the ``dockhand.registry.registry`` doc fragment."""
    return dict(
        registry=dict(type="str", required=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        docker_config=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        ca_cert=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        concurrency=dict(type="int", default=DEFAULT_CONCURRENCY),
    )


def manifest_reference_argument_spec() -> dict:
    """``repository`` plus ``tag`` or ``digest``: one manifest, as registry_manifest and registry_manifest_info name it."""
    return dict(
        repository=dict(type="str", required=True),
        tag=dict(type="str"),
        digest=dict(type="str"),
    )


def validate_manifest_reference(params: Dict[str, Any]) -> None:
    """Raise image_reference.ReferenceError (one line) for a repository, tag or digest the registry would reject."""
    validate_repository(params["repository"])
    if params.get("tag") is not None:
        validate_tag(params["tag"])
    if params.get("digest") is not None:
        validate_digest(params["digest"])


def require_registry_libraries(module):
    """Fail the module the ansible-test way when requests is missing."""
    if REQUESTS_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hasher(digest: str):
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise RegistryError("cannot verify digest %s: unsupported algorithm %r" % (digest, algorithm))
    return hashlib.new(algorithm)


def compute_digest(data: bytes, like: str = "sha256:") -> str:
    """Digest of ``data`` with the algorithm of ``like``."""
    hasher = _hasher(like)
    hasher.update(data)
    return like.split(":", 1)[0] + ":" + hasher.hexdigest()


def is_digest(reference: str) -> bool:
    return ":" in reference


def normalize_registry_host(registry: str) -> str:
    """``host[:port]`` of the API for a ``registry`` option value (``docker.io`` means Docker Hub)."""
    text = registry.strip()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/", 1)[0].lower()
    if text in DOCKER_HUB_HOSTS:
        return DOCKER_HUB_API_HOST
    return text


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def media_type_of(content_type: Optional[str]) -> Optional[str]:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip() or None


@dataclass(frozen=True)
class ManifestHead:
    """What a HEAD on a manifest tells: its digest, media type and size in bytes."""

    digest: str
    media_type: Optional[str]
    size: Optional[int]


class Manifest:
    """A manifest as fetched: the exact ``body`` bytes, its verified ``digest`` and the parsed ``data``."""

    def __init__(self, digest: str, media_type: Optional[str], body: bytes):
        self.digest = digest
        self.body = body
        self.size = len(body)
        try:
            self.data = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryError("manifest %s is not valid JSON: %s" % (digest, one_line(exc)))
        try:
            check_manifest(self.data, is_index=False)
            self.media_type = self.data.get("mediaType") or media_type or (
                OCI_INDEX if "manifests" in self.data else OCI_MANIFEST)
            if self.is_index:
                check_manifest(self.data, is_index=True)
        except AnswerError as exc:
            raise RegistryError("manifest %s is malformed: %s" % (digest, exc))

    @property
    def is_index(self) -> bool:
        """True for an OCI index or Docker manifest list (a multi-platform image)."""
        if self.media_type in INDEX_MEDIA_TYPES:
            return True
        return "manifests" in self.data and "layers" not in self.data

    @property
    def child_descriptors(self) -> List[dict]:
        """The ``manifests`` entries of an index (empty for an image manifest)."""
        if not self.is_index:
            return []
        return [d for d in self.data.get("manifests") or [] if isinstance(d, dict)]

    @property
    def config_descriptor(self) -> Optional[dict]:
        config = self.data.get("config")
        return config if not self.is_index and isinstance(config, dict) else None

    @property
    def layer_descriptors(self) -> List[dict]:
        if self.is_index:
            return []
        return [d for d in self.data.get("layers") or [] if isinstance(d, dict)]

    @property
    def blob_descriptors(self) -> List[dict]:
        """Config then layers of an image manifest (empty for an index)."""
        config = self.config_descriptor
        return ([config] if config else []) + self.layer_descriptors

    def __repr__(self):
        return "Manifest(%s, %s, %d bytes)" % (self.digest, self.media_type, self.size)


class _SizedStream:
    """An iterable request body with a known length, so requests sends Content-Length, not chunks."""

    def __init__(self, chunks, size):
        self._chunks = chunks
        self._size = size

    def __len__(self):
        return self._size

    def __iter__(self):
        sent = 0
        for chunk in self._chunks:
            if chunk:
                sent += len(chunk)
                yield chunk
        if sent != self._size:
            raise RegistryError("blob stream gave %d bytes, expected %d" % (sent, self._size))


def _retry_after_seconds(response, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: Retry-After if given, else exponential backoff."""
    value = response.headers.get("Retry-After") if response is not None else None
    if value:
        value = value.strip()
        try:
            return max(0.0, min(float(value), MAX_RETRY_WAIT))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
            return max(0.0, min(when.timestamp() - time.time(), MAX_RETRY_WAIT))
        except (TypeError, ValueError, OverflowError):
            pass
    return min(BACKOFF_BASE * (2 ** attempt), MAX_RETRY_WAIT) * (0.75 + random.random() / 2)


def _attempts_text(attempts: int) -> str:
    """`` (after 3 attempts)`` when a request was retried, else nothing."""
    return " (after %d attempts)" % attempts if attempts > 1 else ""


def _set_query(url: str, **values) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in values]
    query.extend((k, str(v)) for k, v in values.items() if v is not None)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class HttpResponse:
    """The parts of an HTTP answer the client uses, over a urllib3 response (streamed or preloaded)."""

    def __init__(self, raw, url, method):
        self.raw = raw
        self.url = url
        self.method = method
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self._content = None
        self.attempts = 1
        self.retry_note = ""
        self.started = time.monotonic()

    def read_all(self, deadline: float) -> None:
        """Read the whole body by ``deadline`` (see http_body.read_body)."""
        self._content = read_body(self.raw, deadline)

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = self.raw.data or b""
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content.decode("utf-8"))

    def iter_content(self, chunk_size):
        for chunk in self.raw.stream(chunk_size, decode_content=False):
            if chunk:
                yield chunk

    def close(self):
        """Give the connection back to the pool, or drop it when the body was not read to its end."""
        if self.raw.isclosed() or self._content is not None:
            self.raw.release_conn()
            return
        length = self.raw.length_remaining
        if self.method == "HEAD" or length == 0:
            self.raw.release_conn()
            return
        self.raw.close()
        self.raw.release_conn()


class RegistryClient:
    """One registry: its base URL, credentials, token cache and keep-alive connection pool.

    Every method raises a ``RegistryError`` (one readable line) on failure.
    The first call probes ``GET /v2/`` once to settle the scheme (https, or
    http for a loopback registry that does not speak TLS) and the auth scheme.
    For a bare loopback host a bare ClientHello first tells whether the port
    speaks TLS at all, so a plain-http registry costs no CA bundle load.
    """

    def __init__(self, registry: str, username: Optional[str] = None, password: Optional[str] = None,
                 docker_config: Optional[str] = None, validate_certs: bool = True,
                 ca_cert: Optional[str] = None, client_cert: Optional[str] = None,
                 client_key: Optional[str] = None, timeout: Optional[int] = None,
                 concurrency: Optional[int] = None, sleep=time.sleep, option_prefix: str = ""):
        if requests is None:
            raise RegistryError("the Python library requests is required to talk to a registry")
        if not registry or not str(registry).strip():
            raise RegistryError("registry must be host[:port] or an http(s) URL")
        text = str(registry).strip()
        explicit_scheme = None
        if "://" in text:
            parts = urlsplit(text)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise RegistryError("registry %r: only http:// and https:// URLs are supported" % text)
            explicit_scheme = parts.scheme
            host = parts.netloc
            path = parts.path.rstrip("/")
            if path.endswith("/v2"):
                path = path[:-3]
        else:
            host, _sep, path = text.partition("/")
            path = ("/" + path).rstrip("/") if path else ""
        host = host.lower()
        if host in DOCKER_HUB_HOSTS:
            host = DOCKER_HUB_API_HOST
            explicit_scheme = "https"
        if "@" in host:
            # Never echo it: what comes before the @ is a user name and maybe a password.
            raise RegistryError("registry must not hold credentials (user@host): give them as username and password,"
                                " or in docker_config")
        if not host or any(c in host for c in " ?#"):
            raise RegistryError("registry %r: expected host[:port] or an http(s) URL" % text)
        if (username is None) != (password is None):
            raise RegistryError("{0}username and {0}password must be given together".format(option_prefix))
        if timeout is not None and timeout <= 0:
            raise RegistryError("timeout must be a positive number of seconds")
        if concurrency is not None and concurrency < 1:
            raise RegistryError("concurrency must be at least 1")
        if bool(client_cert) != bool(client_key) and client_key:
            raise RegistryError("client_key needs client_cert")
        self.host = host
        self.registry = text
        self._path = path
        self._candidates = (
            [explicit_scheme] if explicit_scheme
            else (["https", "http"] if is_loopback_host(host) else ["https"])
        )
        self._base_url = None
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.concurrency = concurrency or DEFAULT_CONCURRENCY
        self.validate_certs = validate_certs
        self._sleep = sleep
        self._probe_lock = threading.Lock()

        if username is not None:
            credentials = Credentials(username=username, password=password)
        else:
            credentials = credentials_from_docker_config(host, docker_config, explicit=bool(docker_config))
        docker_certs = os.path.join(DOCKER_CERTS_DIR, host)
        if validate_certs and not ca_cert and os.path.isfile(os.path.join(docker_certs, "ca.crt")):
            # The docker engine's per-registry trust folder: honor it like docker pull does.
            ca_cert = os.path.join(docker_certs, "ca.crt")
        if not client_cert and os.path.isfile(os.path.join(docker_certs, "client.cert")) \
                and os.path.isfile(os.path.join(docker_certs, "client.key")):
            client_cert = os.path.join(docker_certs, "client.cert")
            client_key = os.path.join(docker_certs, "client.key")
        self._verify = ca_cert if (validate_certs and ca_cert) else bool(validate_certs)
        self._client_cert = client_cert
        self._client_key = client_key
        self._urllib3_timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        self._pools = {}
        self._proxies = {}
        self.session = self._new_session()
        self.option_prefix = option_prefix
        self.auth = RegistryAuth(host, credentials, lambda: self.session, self.timeout, option_prefix=option_prefix)
        self.requests_sent = 0
        self.write_gates = RepositoryGates()
        # A module replaces this with the one stop_on_sigterm() gives it.
        self.stop = StopRequest()

    @classmethod
    def from_params(cls, params: Dict[str, Any], prefix: str = "", **overrides) -> "RegistryClient":
        """Build a client from module parameters.

        With ``prefix`` (for example ``source_``) each option is read as
        ``<prefix><option>``. Options absent or None under the prefix fall back
        to the unprefixed value, except ``registry``, ``username`` and
        ``password``, which belong to one registry only. ``overrides`` win
        over both (for example ``registry=`` parsed out of a reference).
        """
        def pick(name, fallback=True):
            if name in overrides:
                return overrides[name]
            value = params.get(prefix + name)
            if value is None and fallback and prefix:
                value = params.get(name)
            return value

        registry = pick("registry", fallback=False)
        username = pick("username", fallback=False)
        password = pick("password", fallback=False)
        validate_certs = pick("validate_certs")
        return cls(
            registry=registry, username=username, password=password,
            docker_config=pick("docker_config"),
            validate_certs=True if validate_certs is None else bool(validate_certs),
            ca_cert=pick("ca_cert"), client_cert=pick("client_cert"), client_key=pick("client_key"),
            timeout=pick("timeout"), concurrency=pick("concurrency"), option_prefix=prefix,
        )

    def _new_session(self):
        session = requests.Session()
        # No netrc and no CA bundle from the environment overriding ca_cert; proxies are read in _probe.
        session.trust_env = False
        session.verify = self._verify
        if self._client_cert:
            session.cert = (self._client_cert, self._client_key) if self._client_key else self._client_cert
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(self.concurrency, 1), max_retries=0)
        session.mount("https://", self._adapter)
        session.mount("http://", self._adapter)
        session.headers["User-Agent"] = USER_AGENT
        if self._verify is False:
            warnings.simplefilter("ignore", InsecureRequestWarning)
        return session

    # ----------------------------------------------------------------- plumbing

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` of the registry, settled by the first call."""
        if self._base_url is None:
            self._probe()
        return self._base_url

    def _probe(self):
        with self._probe_lock:
            if self._base_url is not None:
                return
            last_error = None
            for index, scheme in enumerate(self._candidates):
                base = "%s://%s%s" % (scheme, self.host, self._path)
                more = index + 1 < len(self._candidates)
                self._proxies = requests.utils.get_environ_proxies(base + "/v2/")
                self.session.proxies = self._proxies
                if scheme == "https" and more and not self._proxies and self._speaks_tls() is False:
                    # Not TLS: skip the verifying https attempt, whose SSL context loads the system CA bundle
                    # (~50 ms a run) only to fail its handshake; http comes next, as after that failure.
                    continue
                try:
                    response = self._send("GET", base + "/v2/", "contact the registry API", scopes=None,
                                          retry_connection=not more)
                except RegistryConnectionError as exc:
                    last_error = exc
                    tls_verify = "certificate verify failed" in str(exc).lower()
                    if more and not tls_verify:
                        continue
                    if more is False and index > 0 and "tls" not in str(exc).lower():
                        raise RegistryConnectionError(
                            "cannot connect to registry %s over https or http: %s" % (
                                self.host, _reason_of(last_error)))
                    raise
                self._base_url = base
                if response.status_code == 401:
                    self.auth.learn(response)
                elif response.status_code == 404:
                    raise RegistryError(
                        "%s does not serve the Registry HTTP API v2 (GET /v2/ answered 404)" % base, 404)
                elif response.status_code >= 400 and response.status_code != 403:
                    raise self._error(response, "contact the registry API")
                return

    def _speaks_tls(self) -> Optional[bool]:
        """Whether the registry's port answers a TLS ClientHello like a TLS server; None when that is unclear.

        Only a ClientHello from a bare context goes out (no CA bundle loaded, no
        request, no credentials). The answer only picks https or http; an https
        connection is then made and verified exactly as without this check.
        """
        parts = urlsplit("https://" + self.host)
        try:
            address = (parts.hostname, parts.port or 443)
        except ValueError:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        outgoing = ssl.MemoryBIO()
        tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=parts.hostname)
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass  # the ClientHello is in ``outgoing`` now
        except ssl.SSLError:
            return None
        try:
            with socket.create_connection(address, timeout=self.timeout) as sock:
                sock.sendall(outgoing.read())
                answer = sock.recv(TLS_RECORD_HEADER_SIZE)
        except socket.timeout:
            return False  # the verifying attempt would time out the same way, then fall back to http
        except OSError:
            return None
        if not answer:
            return None
        if answer[0] in TLS_RECORD_TYPES:
            return True if answer[1:2] == b"\x03" else None
        return False

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _repo_path(self, repository: str, *rest: str) -> str:
        return "/v2/" + quote(repository, safe="/") + "/" + "/".join(quote(part, safe=":") for part in rest)

    def _same_origin(self, url: str) -> bool:
        if self._base_url and url.startswith(self._base_url + "/"):
            return True
        parts = urlsplit(url)
        base = urlsplit(self._base_url or "")
        return parts.netloc.lower() == base.netloc.lower() and parts.scheme == base.scheme

    def _pool(self, scheme, netloc, foreign=False):
        """The keep-alive pool for one origin, from the HTTPAdapter's PoolManager (pool_maxsize = concurrency)."""
        key = (scheme, netloc, foreign)
        pool = self._pools.get(key)
        if pool is None:
            parts = urlsplit(scheme + "://" + netloc)
            pool_kwargs = {}
            if scheme == "https":
                # Our CA file and client certificate are for the registry, not for object storage it redirects to.
                verify = bool(self.validate_certs) if foreign else self._verify
                pool_kwargs["cert_reqs"] = "CERT_REQUIRED" if verify else "CERT_NONE"
                if verify is not True and verify:
                    pool_kwargs["ca_cert_dir" if os.path.isdir(verify) else "ca_certs"] = verify
                if self._client_cert and not foreign:
                    pool_kwargs["cert_file"] = self._client_cert
                    pool_kwargs["key_file"] = self._client_key
            pool = self._adapter.poolmanager.connection_from_host(
                parts.hostname, parts.port or (443 if scheme == "https" else 80), scheme=scheme,
                pool_kwargs=pool_kwargs)
            self._pools[key] = pool
        return pool

    def _http(self, method, url, headers, body=None, stream=False, foreign=False):
        """One HTTP exchange on the shared pool, no redirects followed, no retries.

        Unless ``stream``, the body is read whole within ``timeout`` seconds of the start.

        Goes straight to urllib3 (the transport under requests), because the
        requests Session layer (cookies, hooks, settings merge) costs more CPU
        per call than the registry takes to answer a HEAD; bulk work is bound
        by that. Through a proxy from the environment, the Session is used.
        """
        deadline = time.monotonic() + self.timeout
        all_headers = {"User-Agent": USER_AGENT}
        if headers:
            all_headers.update(headers)
        parts = urlsplit(url)
        if self._proxies and requests.utils.select_proxy(url, self._proxies):
            raw = self.session.request(
                method, url, headers=all_headers, data=body, stream=True, allow_redirects=False,
                timeout=self.timeout, verify=bool(self.validate_certs) if foreign else self._verify,
                cert=None if foreign else self.session.cert).raw
        else:
            pool = self._pool(parts.scheme, parts.netloc, foreign)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            raw = pool.request(method, target, body=body, headers=all_headers, retries=False, redirect=False,
                               assert_same_host=False, preload_content=False, decode_content=False,
                               timeout=self._urllib3_timeout, release_conn=False)
        response = HttpResponse(raw, url, method)
        response.started = deadline - self.timeout
        if not stream:
            # Blobs stream for as long as they take (each wait bounded by timeout); any other
            # answer must be complete within timeout seconds of the request.
            response.read_all(deadline)
        return response

    def _send(self, method, url, what, scopes, headers=None, retry_connection=True, data=None, stream=False,
              foreign=False):
        """One request with retries on 429/5xx and dropped connections; no auth handling."""
        attempt = 0
        waited = 0.0
        replayable = not isinstance(data, _SizedStream)
        while True:
            tried = _attempts_text(attempt + 1)
            try:
                self.requests_sent += 1
                response = self._http(method, url, headers, body=data, stream=stream, foreign=foreign)
            except BodyDeadline:
                raise RegistryConnectionError(
                    "cannot %s on registry %s: the answer did not arrive completely within %s seconds (timeout)%s"
                    % (what, self.host, self.timeout, tried))
            except BodyTooLarge:
                raise RegistryError("cannot %s on registry %s: the answer is larger than %d MiB%s" % (
                    what, self.host, MAX_BODY_BYTES // (1024 * 1024), tried))
            except _SSL_ERRORS as exc:
                raise RegistryConnectionError(self._tls_message(url, exc))
            except _TIMEOUT_ERRORS as exc:
                if isinstance(exc, _REFUSED_ERRORS):
                    raise RegistryConnectionError("cannot %s on registry %s: cannot connect to %s: %s%s" % (
                        what, self.host, url, _reason_of(exc), tried))
                raise RegistryConnectionError("cannot %s on registry %s: no answer within %s seconds (timeout)%s" % (
                    what, self.host, self.timeout, tried))
            except _CONNECTION_ERRORS as exc:
                if _is_ssl_error(exc):
                    raise RegistryConnectionError(self._tls_message(url, exc))
                # A keep-alive connection the server closed meanwhile shows up here too: retry quickly.
                if retry_connection and attempt < 2 and replayable:
                    attempt += 1
                    self._sleep(0.05 * attempt)
                    continue
                raise RegistryConnectionError("cannot %s on registry %s: cannot connect to %s: %s%s" % (
                    what, self.host, url, _reason_of(exc), tried))
            except RegistryError:
                raise
            except Exception as exc:
                raise RegistryConnectionError("cannot %s on registry %s: %s%s" % (
                    what, self.host, one_line(exc), tried))
            response.attempts = attempt + 1
            if response.status_code in RETRY_STATUSES and attempt + 1 < MAX_ATTEMPTS and replayable:
                wait_for = _retry_after_seconds(response, attempt)
                if waited + wait_for > self.timeout:
                    # The waits of one request stay within timeout: give up now rather than sleep past it.
                    asked = "the registry asked to wait" if response.headers.get("Retry-After") else "the next wait is"
                    response.retry_note = "; %s %.0f s more, beyond the retry budget of %s s (timeout)" % (
                        asked, wait_for, self.timeout)
                    return response
                response.close()
                attempt += 1
                waited += wait_for
                self._sleep(wait_for)
                continue
            return response

    def _tls_message(self, url, exc):
        reason = _reason_of(exc)
        if "certificate verify failed" in reason.lower() or "CERTIFICATE_VERIFY_FAILED" in reason:
            return ("TLS certificate verification failed for %s (%s): set %sca_cert to the CA that signed"
                    " the registry's certificate, or %svalidate_certs: false"
                    % (url, reason, self.option_prefix, self.option_prefix))
        return "TLS error talking to %s: %s" % (url, reason)

    def _call(self, method, path_or_url, what, scopes, headers=None, ok=(200,), delete=False,
              not_found_ok=False, **kwargs):
        """Request with auth: retries once after a 401 with a fresh token; raises for answers not in ``ok``."""
        url = path_or_url if "://" in path_or_url else self._url(path_or_url)
        retried_auth = False
        while True:
            sent = dict(headers or {})
            if self._same_origin(url):
                sent.update(self.auth.headers(scopes))
            response = self._send(method, url, what, scopes, headers=sent, **kwargs)
            if response.status_code == 401 and not retried_auth:
                if isinstance(kwargs.get("data"), _SizedStream):
                    break
                scopes = self.auth.handle_unauthorized(response, scopes, sent)
                response.close()
                retried_auth = True
                continue
            break
        if response.status_code in ok or (not_found_ok and response.status_code == 404):
            return response
        error = self._error(response, what, delete=delete)
        response.close()
        raise error

    def _error(self, response, what, delete=False):
        """The RegistryError for a failed answer, saying how many attempts it took."""
        error = error_from_response(response, what, self.host, delete=delete, username=self.auth.username)
        suffix = response.retry_note + _attempts_text(response.attempts)
        if suffix:
            error = type(error)(str(error) + suffix, error.status, error.code)
        return error

    # ------------------------------------------------------------------ catalog

    def _paged(self, first_url, key, what, scopes, page_size):
        """Follow Link headers from ``first_url``; shrink the page on PAGINATION_NUMBER_INVALID.

        Bounded: at most MAX_PAGES pages, and at most MAX_EMPTY_PAGES in a row that bring
        no new entry (a Link header that loops through changing URLs).
        """
        items: List[str] = []
        known = set()
        url = first_url
        seen = set()
        empty_pages = 0
        for page in range(MAX_PAGES):
            if page >= SMALL_PAGES_ALLOWED and page_size >= MIN_PAGE_ENTRIES and len(items) < page * MIN_PAGE_ENTRIES:
                raise RegistryError("cannot %s on registry %s: after %d pages of %.1f entries on average (%d asked"
                                    " for) the Link header still goes on; no real registry pages like that, so its"
                                    " pagination is broken" % (what, self.host, page, len(items) / float(page),
                                                               page_size))
            response = self._call("GET", url, what, scopes, ok=(200, 400, 404))
            if response.status_code == 400:
                errors = parse_error_body(response.content)
                if (errors and errors[0].get("code") == "PAGINATION_NUMBER_INVALID" and page_size > 1):
                    page_size = max(1, page_size // 2)
                    url = _set_query(url, n=page_size)
                    continue
                raise self._error(response, what)
            if response.status_code == 404:
                raise self._error(response, what)
            try:
                data = response.json()
            except (ValueError, UnicodeDecodeError):
                raise RegistryError("cannot %s on registry %s: the answer is not JSON" % (what, self.host))
            try:
                names = page_names(data, key)
            except AnswerError as exc:
                raise RegistryError("cannot %s on registry %s: %s" % (what, self.host, exc))
            new = [name for name in names if name not in known]
            known.update(new)
            items.extend(new)
            link = parse_link_header(response.headers.get("Link")).get("next")
            if not link:
                return items
            empty_pages = 0 if new else empty_pages + 1
            if empty_pages >= MAX_EMPTY_PAGES:
                raise RegistryError("cannot %s on registry %s: %d pages in a row brought no new entry but the"
                                    " Link header goes on (broken pagination)" % (what, self.host, empty_pages))
            url = urljoin(response.url or url, link)
            if page_size and "n=" not in urlsplit(url).query:
                url = _set_query(url, n=page_size)
            if url in seen:
                raise RegistryError("cannot %s on registry %s: the registry's Link header loops" % (what, self.host))
            seen.add(url)
        raise RegistryError("cannot %s on registry %s: the Link header goes on for more than %d pages"
                            " (%d entries so far); no real registry pages that far, so its pagination is broken"
                            % (what, self.host, MAX_PAGES, len(items)))

    def catalog(self, page_size: Optional[int] = None) -> List[str]:
        """Every repository name of the registry (all pages of ``/v2/_catalog``)."""
        page_size = page_size or DEFAULT_PAGE_SIZE
        return self._paged(self._url("/v2/_catalog?n=%d" % page_size), "repositories",
                           "list the catalog", ["registry:catalog:*"], page_size)

    def list_tags(self, repository: str, page_size: Optional[int] = None) -> List[str]:
        """Every tag of ``repository``; RegistryNotFound when the repository is unknown."""
        page_size = page_size or DEFAULT_PAGE_SIZE
        url = self._url(self._repo_path(repository, "tags", "list") + "?n=%d" % page_size)
        return self._paged(url, "tags", "list the tags of %s" % repository,
                           ["repository:%s:pull" % repository], page_size)

    # ---------------------------------------------------------------- manifests

    def head_manifest(self, repository: str, reference: str) -> Optional[ManifestHead]:
        """Digest, media type and size of a manifest, or None when there is none."""
        what = "look up manifest %s of %s" % (reference, repository)
        response = self._call("HEAD", self._repo_path(repository, "manifests", reference), what,
                              ["repository:%s:pull" % repository], headers={"Accept": MANIFEST_ACCEPT},
                              not_found_ok=True)
        if response.status_code == 404:
            return None
        digest = self._header_digest(response, what)
        if not digest:
            manifest = self.get_manifest(repository, reference)
            if manifest is None:
                return None
            return ManifestHead(manifest.digest, manifest.media_type, manifest.size)
        length = response.headers.get("Content-Length")
        return ManifestHead(digest, media_type_of(response.headers.get("Content-Type")),
                            int(length) if length and length.isdigit() else None)

    def get_manifest(self, repository: str, reference: str) -> Optional[Manifest]:
        """The manifest with its exact bytes, or None when the tag or digest does not exist.

        The digest is verified: against ``reference`` when it is a digest,
        against the registry's Docker-Content-Digest header otherwise.
        Raises RegistryNotFound when the registry says the repository is unknown.
        """
        what = "get manifest %s of %s" % (reference, repository)
        response = self._call("GET", self._repo_path(repository, "manifests", reference), what,
                              ["repository:%s:pull" % repository], headers={"Accept": MANIFEST_ACCEPT},
                              not_found_ok=True)
        if response.status_code == 404:
            errors = parse_error_body(response.content)
            if errors and errors[0].get("code") == "NAME_UNKNOWN":
                raise self._error(response, what)
            return None
        body = response.content
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError("cannot %s on registry %s: manifest is larger than 4 MiB" % (what, self.host))
        expected = reference if is_digest(reference) else self._header_digest(response, what)
        digest = compute_digest(body, expected or "sha256:")
        if expected and digest != expected:
            raise RegistryError("cannot %s on registry %s: the manifest's content has digest %s, expected %s"
                                % (what, self.host, digest, expected))
        if not expected or not expected.startswith("sha256:"):
            digest = sha256_digest(body)
        try:
            return Manifest(digest, media_type_of(response.headers.get("Content-Type")), body)
        except RegistryError as exc:
            raise RegistryError("cannot %s on registry %s: %s" % (what, self.host, exc))

    def _header_digest(self, response, what) -> Optional[str]:
        """The Docker-Content-Digest header, checked to be a digest (None when absent)."""
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            return None
        try:
            return validate_digest(digest.strip())
        except ImageReferenceError:
            raise RegistryError("cannot %s on registry %s: its Docker-Content-Digest header %s is not a digest"
                                % (what, self.host, quoted(digest)))

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Store ``body`` byte for byte under ``reference`` (a tag or its digest); return its digest."""
        what = "put manifest %s of %s" % (reference, repository)
        digest = sha256_digest(body)
        if is_digest(reference) and reference != digest and reference.startswith("sha256:"):
            raise RegistryError("cannot %s: the manifest's digest is %s" % (what, digest))
        with self.write_gates.hold(repository, PUT):
            response = self._call("PUT", self._repo_path(repository, "manifests", reference), what,
                                  ["repository:%s:pull,push" % repository],
                                  headers={"Content-Type": media_type}, ok=(200, 201, 202), data=body)
        answered = response.headers.get("Docker-Content-Digest")
        response.close()
        if answered and answered.startswith("sha256:") and answered != digest:
            raise RegistryError("cannot %s on registry %s: the registry stored digest %s, expected %s" % (
                what, self.host, answered, digest))
        return digest

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete the manifest ``digest`` (and with it every tag pointing at it).

        True when the registry confirmed the delete. False when an attempt failed (5xx)
        and a retry then found the manifest gone: distribution 2.x removes the manifest
        before it untags, so its tags may still be listed without resolving (dangling);
        the caller must check the tag list. RegistryNotFound when absent from the start,
        RegistryDeleteDisabled when deletes are off.
        """
        what = "delete manifest %s of %s" % (digest, repository)
        with self.write_gates.hold(repository, DELETE):
            response = self._call("DELETE", self._repo_path(repository, "manifests", digest), what,
                                  ["repository:%s:delete" % repository], ok=(200, 202, 204), delete=True,
                                  not_found_ok=True)
        response.close()
        if response.status_code == 404 and response.attempts == 1:
            raise self._error(response, what, delete=True)
        return response.status_code != 404

    def repository_request(self, method: str, repository: str, parts, what: str, query=None,
                           ok=(200,)) -> HttpResponse:
        """``method`` on ``/v2/<repository>/<parts...>[?query]``, for API calls without a method of their own
        (the OCI referrers API, tag delete), with this client's auth, retries and one-line errors.

        Returns the HttpResponse with its body read (``.content``, ``.headers``, ``.attempts``);
        a status not in ``ok`` raises its RegistryError (405 on a DELETE as deletes disabled).
        """
        path = self._repo_path(repository, *parts) + ("?" + urlencode(query) if query else "")
        action = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "pull,push")
        response = self._call(method, path, what, ["repository:%s:%s" % (repository, action)], ok=tuple(ok),
                              delete=method == "DELETE")
        try:
            _body = response.content if method != "HEAD" else b""
        finally:
            response.close()
        return response

    # -------------------------------------------------------------------- blobs

    def blob_exists(self, repository: str, digest: str) -> bool:
        """True when ``repository`` has (or can serve) the blob ``digest``."""
        response = self._call("HEAD", self._repo_path(repository, "blobs", digest),
                              "look up blob %s of %s" % (digest, repository),
                              ["repository:%s:pull" % repository], ok=(200, 307, 302, 303), not_found_ok=True)
        response.close()
        return response.status_code != 404

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> bool:
        """Cross-repository mount of ``digest`` from ``source_repository``; False when the registry refused.

        When the registry answers by opening an upload instead (202), that
        upload is cancelled so that nothing is left behind.
        """
        what = "mount blob %s from %s into %s" % (digest, source_repository, repository)
        url = self._repo_path(repository, "blobs", "uploads") + "/?" + urlencode(
            [("mount", digest), ("from", source_repository)])
        scopes = ["repository:%s:pull,push" % repository, "repository:%s:pull" % source_repository]
        response = self._call("POST", url, what, scopes, ok=(201, 202))
        response.close()
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if location:
            self._cancel_upload(urljoin(response.url, location), repository)
        return False

    def _cancel_upload(self, url, repository):
        try:
            self._call("DELETE", url, "cancel an upload to %s" % repository,
                       ["repository:%s:pull,push" % repository], ok=(200, 202, 204, 404)).close()
        except RegistryError:
            pass  # best effort: the registry expires abandoned uploads itself

    @contextlib.contextmanager
    def _blob_response(self, repository, digest, what):
        """GET a blob, following redirects by hand so Authorization never leaves the registry's host."""
        scopes = ["repository:%s:pull" % repository]
        response = self._call("GET", self._repo_path(repository, "blobs", digest), what, scopes,
                              ok=(200, 301, 302, 303, 307, 308), stream=True)
        try:
            for _hop in range(MAX_REDIRECTS):
                if response.status_code == 200:
                    break
                location = response.headers.get("Location")
                response.close()
                if not location:
                    raise RegistryError("cannot %s on registry %s: redirect without Location" % (what, self.host))
                url = urljoin(response.url, location)
                if self._same_origin(url):
                    response = self._call("GET", url, what, scopes, ok=(200, 301, 302, 303, 307, 308), stream=True)
                else:
                    # Object storage: a pre-signed URL; our credentials and private CA are not for it.
                    response = self._send("GET", url, what, None, stream=True, foreign=True)
                    if response.status_code not in (200, 301, 302, 303, 307, 308):
                        raise error_from_response(response, what, urlsplit(url).netloc)
            else:
                raise RegistryError("cannot %s on registry %s: too many redirects" % (what, self.host))
            yield response
        finally:
            response.close()

    def get_blob_json(self, repository: str, digest: str) -> dict:
        """A small JSON blob (an image config), digest verified."""
        what = "get blob %s of %s" % (digest, repository)
        with self._blob_response(repository, digest, what) as response:
            # Small, so bounded like any answer read whole: within timeout of the request.
            try:
                body = read_body(response.raw, response.started + self.timeout, limit=MAX_JSON_BLOB_BYTES)
            except BodyDeadline:
                raise RegistryConnectionError("cannot %s on registry %s: the answer did not arrive completely"
                                              " within %s seconds (timeout)" % (what, self.host, self.timeout))
            except BodyTooLarge:
                raise RegistryError("cannot %s on registry %s: larger than 16 MiB" % (what, self.host))
            hasher = _hasher(digest)
            hasher.update(body)
            parts = [body]
        got = digest.split(":", 1)[0] + ":" + hasher.hexdigest()
        if got != digest:
            raise RegistryError("cannot %s on registry %s: content has digest %s" % (what, self.host, got))
        try:
            data = json.loads(b"".join(parts).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise RegistryError("cannot %s on registry %s: not JSON" % (what, self.host))
        if not isinstance(data, dict):
            raise RegistryError("cannot %s on registry %s: not a JSON object" % (what, self.host))
        return data

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str):
        """Stream a blob: yields ``(chunks, size)``; the chunks iterator verifies the digest at its end."""
        what = "download blob %s of %s" % (digest, repository)
        with self._blob_response(repository, digest, what) as response:
            length = response.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None

            def chunks():
                hasher = _hasher(digest)
                try:
                    for chunk in response.iter_content(BLOB_CHUNK_SIZE):
                        hasher.update(chunk)
                        yield chunk
                except _CONNECTION_ERRORS as exc:
                    raise RegistryConnectionError("cannot %s on registry %s: %s" % (what, self.host, one_line(exc)))
                got = digest.split(":", 1)[0] + ":" + hasher.hexdigest()
                if got != digest:
                    raise RegistryError("cannot %s on registry %s: content has digest %s" % (what, self.host, got))

            yield chunks(), size

    def upload_blob(self, repository: str, digest: str, chunks_iterable, size: int) -> None:
        """Upload a blob from an iterable of byte chunks totalling ``size`` bytes (monolithic, streamed)."""
        what = "upload blob %s to %s" % (digest, repository)
        scopes = ["repository:%s:pull,push" % repository]
        response = self._call("POST", self._repo_path(repository, "blobs", "uploads") + "/", what, scopes,
                              ok=(202,))
        response.close()
        location = response.headers.get("Location")
        if not location:
            raise RegistryError("cannot %s on registry %s: no upload Location" % (what, self.host))
        upload_url = urljoin(response.url, location)
        try:
            response = self._call("PUT", _set_query(upload_url, digest=digest), what, scopes,
                                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                                  ok=(201, 204),
                                  data=_SizedStream(chunks_iterable, size))
        except Exception:
            self._cancel_upload(upload_url, repository)
            raise
        response.close()

    # ------------------------------------------------------------- concurrency

    def map_bounded(self, func, items, stoppable: bool = True) -> list:
        """``[func(item) for item in items]`` on at most ``concurrency`` threads; the first error is raised.

        Once ``stop`` is requested (SIGTERM), items not started yet raise RegistryInterrupted,
        unless ``stoppable`` is False (the caller then checks ``stop`` itself).
        """
        items = list(items)
        if stoppable:
            func = self._stoppable(func)
        workers = min(self.concurrency, len(items))
        if workers <= 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers) as executor:
            futures = [executor.submit(func, item) for item in items]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            failed = [f for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
            if failed:
                raise failed[0].exception()
            return [f.result() for f in futures]

    def _stoppable(self, func):
        def guarded(item):
            if self.stop.requested:
                raise RegistryInterrupted("stopped by SIGTERM before finishing on registry %s; nothing was"
                                          " left half done" % self.host)
            return func(item)
        return guarded

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _is_ssl_error(exc) -> bool:
    seen = 0
    while exc is not None and seen < 6:
        if isinstance(exc, _SSL_ERRORS) or type(exc).__name__ in ("SSLError", "SSLCertVerificationError"):
            return True
        exc = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False


def _reason_of(exc) -> str:
    """The innermost useful text of a requests/urllib3 exception (``Connection refused``, not a repr chain)."""
    text = one_line(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Temporary failure in name resolution", "Connection reset by peer",
                   "certificate verify failed", "wrong version number", "timed out"):
        if marker.lower() in text.lower():
            detail = text
            if marker == "certificate verify failed":
                start = text.lower().find(marker.lower())
                detail = re.split(r"\s*\(_ssl\.c|\)", text[start:])[0]
                return detail
            return marker.lower() if marker != "Connection refused" else "connection refused"
    return text
