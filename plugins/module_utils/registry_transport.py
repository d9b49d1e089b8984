# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP to one registry: the scheme probe, keep-alive pools, auth headers, retries, redirects, pagination.

``RegistryTransport`` knows URLs, statuses and headers, not what a manifest or a tag is;
``registry_client.RegistryClient`` builds the API calls on top of it. Every failure is a
``RegistryError`` whose text is one readable line.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import re
import socket
import ssl
import threading
import time
import traceback
import warnings
from email.utils import parsedate_to_datetime
from typing import Dict, List, Optional
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from ansible_collections.dockhand.registry.plugins.module_utils.errors import one_line
from ansible_collections.dockhand.registry.plugins.module_utils.http_body import (
    MAX_BODY_BYTES,
    BodyDeadline,
    BodyTooLarge,
    read_body,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DOCKER_HUB_API_HOST,
    DOCKER_HUB_HOSTS,
    AnswerError,
    url_for_message,
    without_queries,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_answers import page_names
from ansible_collections.dockhand.registry.plugins.module_utils.registry_auth import (
    Credentials,
    RegistryAuth,
    credentials_from_docker_config,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (
    RegistryConnectionError,
    RegistryError,
    error_from_response,
    parse_error_body,
)

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
    CONNECTION_ERRORS = (requests.exceptions.ConnectionError, urllib3.exceptions.HTTPError, OSError)
except ImportError:
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    requests = None
    # No transport can be built without requests; the names stay importable for the modules'
    # missing_required_lib message.
    CONNECTION_ERRORS = (OSError,)


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
USER_AGENT = "dockhand.registry"
DOCKER_CERTS_DIR = "/etc/docker/certs.d"
# First bytes a TLS server answers a ClientHello with: record type (handshake or alert), then version 3.x.
TLS_RECORD_TYPES = (0x15, 0x16)
TLS_RECORD_HEADER_SIZE = 5


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


def parse_link_header(value: Optional[str]) -> Dict[str, str]:
    """Map each ``rel`` of a Link header to its (possibly relative) URL."""
    links: Dict[str, str] = {}
    if not value:
        return links
    for match in re.finditer(r"<([^>]*)>((?:\s*;\s*[^;,]+(?:=(?:\"[^\"]*\"|[^;,]*))?)*)", value):
        url, params = match.group(1).strip(), match.group(2)
        rel = re.search(r";\s*rel\s*=\s*(?:\"([^\"]*)\"|([^;,\s]+))", params, re.IGNORECASE)
        if rel:
            for name in (rel.group(1) or rel.group(2) or "").split():
                links.setdefault(name.lower(), url)
    return links


class SizedStream:
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


def set_query(url: str, **values) -> str:
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


class RegistryTransport:
    """HTTP to one registry: its base URL, credentials, token cache and keep-alive connection pool.

    The first request probes ``GET /v2/`` once to settle the scheme (https, or
    http for a loopback registry that does not speak TLS) and the auth scheme.
    For a bare loopback host a bare ClientHello first tells whether the port
    speaks TLS at all, so a plain-http registry costs no CA bundle load.
    """

    def __init__(self, settings, sleep=time.sleep):
        """``settings``: a registry_options.RegistrySettings; ``sleep`` is replaced in tests."""
        if requests is None:
            raise RegistryError("the Python library requests is required to talk to a registry")
        registry = settings.registry
        if not registry or not str(registry).strip():
            raise RegistryError("registry must be host[:port] or an http(s) URL")
        text = str(registry).strip()
        explicit_scheme = None
        if "@" in text.split("://", 1)[-1].split("/", 1)[0]:
            # Checked before anything that echoes the text: what comes before the @ is a user name and
            # maybe a password.
            raise RegistryError("registry must not hold credentials (user@host): give them as username and password,"
                                " or in docker_config")
        if "://" in text:
            parts = urlsplit(text)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                # The scheme only: the rest of a malformed URL is not known to be free of secrets.
                raise RegistryError("registry URL scheme %r: only http:// and https:// URLs are supported"
                                    % text.split("://", 1)[0][:20])
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
        if not host or any(c in host for c in " ?#"):
            raise RegistryError("registry %r: expected host[:port] or an http(s) URL" % text)
        self.host = host
        self.registry = text
        self._path = path
        self._candidates = (
            [explicit_scheme] if explicit_scheme
            else (["https", "http"] if is_loopback_host(host) else ["https"])
        )
        self._base_url = None
        self.timeout = settings.timeout
        self.concurrency = settings.concurrency
        validate_certs = self.validate_certs = settings.validate_certs
        ca_cert, client_cert, client_key = settings.ca_cert, settings.client_cert, settings.client_key
        self._sleep = sleep
        self._probe_lock = threading.Lock()

        if settings.username is not None:
            credentials = Credentials(username=settings.username, password=settings.password)
        else:
            credentials = credentials_from_docker_config(host, settings.docker_config,
                                                         explicit=bool(settings.docker_config))
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
        self.option_prefix = settings.option_prefix
        self.auth = RegistryAuth(host, credentials, lambda: self.session, self.timeout,
                                 option_prefix=settings.option_prefix)
        self.requests_sent = 0

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
                    response = self.send("GET", base + "/v2/", "contact the registry API", scopes=None,
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
                    raise self.error(response, "contact the registry API")
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

    def url(self, path: str) -> str:
        return self.base_url + path

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

    def send(self, method, url, what, scopes, headers=None, retry_connection=True, data=None, stream=False,
             foreign=False):
        """One request with retries on 429/5xx and dropped connections; no auth handling."""
        attempt = 0
        waited = 0.0
        replayable = not isinstance(data, SizedStream)
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
                        what, self.host, url_for_message(url), _reason_of(exc), tried))
                raise RegistryConnectionError("cannot %s on registry %s: no answer within %s seconds (timeout)%s" % (
                    what, self.host, self.timeout, tried))
            except CONNECTION_ERRORS as exc:
                if _is_ssl_error(exc):
                    raise RegistryConnectionError(self._tls_message(url, exc))
                # A keep-alive connection the server closed meanwhile shows up here too: retry quickly.
                if retry_connection and attempt < 2 and replayable:
                    attempt += 1
                    self._sleep(0.05 * attempt)
                    continue
                raise RegistryConnectionError("cannot %s on registry %s: cannot connect to %s: %s%s" % (
                    what, self.host, url_for_message(url), _reason_of(exc), tried))
            except RegistryError:
                raise
            except Exception as exc:
                raise RegistryConnectionError("cannot %s on registry %s: %s%s" % (
                    what, self.host, without_queries(one_line(exc)), tried))
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
                    % (url_for_message(url), reason, self.option_prefix, self.option_prefix))
        return "TLS error talking to %s: %s" % (url_for_message(url), reason)

    def call(self, method, path_or_url, what, scopes, headers=None, ok=(200,), delete=False,
             not_found_ok=False, **kwargs):
        """Request with auth: retries once after a 401 with a fresh token; raises for answers not in ``ok``."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        retried_auth = False
        while True:
            sent = dict(headers or {})
            if self._same_origin(url):
                sent.update(self.auth.headers(scopes))
            response = self.send(method, url, what, scopes, headers=sent, **kwargs)
            if response.status_code == 401 and not retried_auth:
                if isinstance(kwargs.get("data"), SizedStream):
                    break
                scopes = self.auth.handle_unauthorized(response, scopes, sent)
                response.close()
                retried_auth = True
                continue
            break
        if response.status_code in ok or (not_found_ok and response.status_code == 404):
            return response
        error = self.error(response, what, delete=delete)
        response.close()
        raise error

    def error(self, response, what, delete=False):
        """The RegistryError for a failed answer, saying how many attempts it took."""
        error = error_from_response(response, what, self.host, delete=delete, username=self.auth.username)
        suffix = response.retry_note + _attempts_text(response.attempts)
        if suffix:
            error = type(error)(str(error) + suffix, error.status, error.code)
        return error

    def paged(self, first_url, key, what, scopes, page_size):
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
            response = self.call("GET", url, what, scopes, ok=(200, 400, 404))
            if response.status_code == 400:
                errors = parse_error_body(response.content)
                if (errors and errors[0].get("code") == "PAGINATION_NUMBER_INVALID" and page_size > 1):
                    page_size = max(1, page_size // 2)
                    url = set_query(url, n=page_size)
                    continue
                raise self.error(response, what)
            if response.status_code == 404:
                raise self.error(response, what)
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
                url = set_query(url, n=page_size)
            if url in seen:
                raise RegistryError("cannot %s on registry %s: the registry's Link header loops" % (what, self.host))
            seen.add(url)
        raise RegistryError("cannot %s on registry %s: the Link header goes on for more than %d pages"
                            " (%d entries so far); no real registry pages that far, so its pagination is broken"
                            % (what, self.host, MAX_PAGES, len(items)))

    @contextlib.contextmanager
    def get_following_redirects(self, path, what, scopes):
        """GET ``path`` as a stream (a blob), following redirects by hand so Authorization never leaves
        the registry's host; yields the final 200 answer."""
        response = self.call("GET", path, what, scopes, ok=(200, 301, 302, 303, 307, 308), stream=True)
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
                    response = self.call("GET", url, what, scopes, ok=(200, 301, 302, 303, 307, 308), stream=True)
                else:
                    # Object storage: a pre-signed URL; our credentials and private CA are not for it.
                    response = self.send("GET", url, what, None, stream=True, foreign=True)
                    if response.status_code not in (200, 301, 302, 303, 307, 308):
                        raise error_from_response(response, what, urlsplit(url).netloc)
            else:
                raise RegistryError("cannot %s on registry %s: too many redirects" % (what, self.host))
            yield response
        finally:
            response.close()

    def close(self):
        self.session.close()


def _is_ssl_error(exc) -> bool:
    seen = 0
    while exc is not None and seen < 6:
        if isinstance(exc, _SSL_ERRORS) or type(exc).__name__ in ("SSLError", "SSLCertVerificationError"):
            return True
        exc = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False


def _reason_of(exc) -> str:
    """The innermost useful text of a requests/urllib3 exception (``Connection refused``, not a repr chain).

    Without the queries of the URLs it names: a pre-signed URL's query is its signature.
    """
    text = without_queries(one_line(exc))
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
