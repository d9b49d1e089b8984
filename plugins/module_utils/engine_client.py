# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection to the Docker engine through the Docker SDK for Python.

Modules build their argument spec from ``engine_argument_spec()`` and get a
low-level ``docker.APIClient`` from ``connect_engine()``. Every failure is
raised as an ``EngineError`` with one readable line, which ``main()`` turns
into ``fail_json``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import queue
import threading
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

DOCKER_IMPORT_ERROR = None
try:
    import docker
    from docker.errors import APIError, DockerException, NotFound
except ImportError:
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):  # type: ignore[no-redef]
        """Stand-in so that ``except`` clauses work without the SDK."""

    class APIError(DockerException):  # type: ignore[no-redef]
        """Stand-in so that ``except`` clauses work without the SDK."""

    class NotFound(APIError):  # type: ignore[no-redef]
        """Stand-in so that ``except`` clauses work without the SDK."""


DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60
# Big reads keep the per-read Python overhead negligible next to hashing and
# writing; the buffer is reused, so memory does not grow with the stream.
STREAM_BUFFER_SIZE = 1024 * 1024
# Buffers the reader thread may fill ahead of the consumer (memory: depth x size).
READ_AHEAD_DEPTH = 4
UPLOAD_CHUNK_SIZE = 1024 * 1024


class EngineError(Exception):
    """A failure talking to the engine, with a message fit for ``fail_json``."""


class EngineNotFound(EngineError):
    """The engine says an image or container does not exist."""


def engine_argument_spec():
    """The connection options documented in the ``dockhand.registry.engine`` doc fragment."""
    return dict(
        docker_host=dict(
            type="str", default=DEFAULT_DOCKER_HOST, aliases=["docker_url"],
            fallback=(env_fallback, ["DOCKER_HOST"]),
        ),
        tls=dict(type="bool", default=False, fallback=(env_fallback, ["DOCKER_TLS"])),
        validate_certs=dict(
            type="bool", default=False, aliases=["tls_verify"],
            fallback=(env_fallback, ["DOCKER_TLS_VERIFY"]),
        ),
        ca_path=dict(type="path", aliases=["ca_cert", "tls_ca_cert", "cacert_path"]),
        client_cert=dict(type="path", aliases=["tls_client_cert", "cert_path"]),
        client_key=dict(type="path", aliases=["tls_client_key", "key_path"], no_log=False),
        api_version=dict(
            type="str", default="auto", aliases=["docker_api_version"],
            fallback=(env_fallback, ["DOCKER_API_VERSION"]),
        ),
        timeout=dict(
            type="int", default=DEFAULT_TIMEOUT, fallback=(env_fallback, ["DOCKER_TIMEOUT"]),
        ),
    )


def require_engine_libraries(module):
    """Fail the module the ansible-test way when the Docker SDK is missing."""
    if DOCKER_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)


def _tls_config(params):
    cert_dir = os.environ.get("DOCKER_CERT_PATH")

    def from_cert_dir(value, filename):
        if value:
            return value
        if cert_dir and os.path.exists(os.path.join(cert_dir, filename)):
            return os.path.join(cert_dir, filename)
        return None

    ca_path = from_cert_dir(params.get("ca_path"), "ca.pem")
    client_cert = from_cert_dir(params.get("client_cert"), "cert.pem")
    client_key = from_cert_dir(params.get("client_key"), "key.pem")
    verify = params.get("validate_certs")
    if not (verify or params.get("tls")):
        return None
    client_pair = (client_cert, client_key) if client_cert and client_key else None
    return docker.tls.TLSConfig(
        client_cert=client_pair, ca_cert=ca_path if verify else None, verify=bool(verify),
    )


def connect_engine(params):
    """Return a connected ``docker.APIClient`` or raise EngineError."""
    host = params.get("docker_host") or DEFAULT_DOCKER_HOST
    try:
        client = docker.APIClient(
            base_url=host,
            version=params.get("api_version") or "auto",
            timeout=params.get("timeout") or DEFAULT_TIMEOUT,
            tls=_tls_config(params),
        )
    except DockerException as exc:
        raise EngineError("cannot reach the Docker engine at %s: %s" % (host, one_line(exc)))
    return client


def one_line(exc):
    """The engine's explanation of ``exc`` on a single line."""
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode("utf-8", "replace") if isinstance(explanation, bytes) else explanation
    text = text or str(exc)
    return " ".join(str(text).split())


def engine_call(what, func, *args, **kwargs):
    """Run one SDK call, turning SDK exceptions into EngineError/EngineNotFound."""
    try:
        return func(*args, **kwargs)
    except NotFound as exc:
        raise EngineNotFound("%s: %s" % (what, one_line(exc)))
    except (APIError, DockerException) as exc:
        raise EngineError("%s: %s" % (what, one_line(exc)))
    except (OSError, IOError) as exc:
        raise EngineError("%s: %s" % (what, one_line(exc)))


def inspect_image_or_none(client, name):
    """Inspect data of image ``name``, or None when the engine does not have it."""
    try:
        return engine_call("inspect image %s" % name, client.inspect_image, name)
    except EngineNotFound:
        return None


def engine_stream(what, chunks):
    """Re-raise SDK and connection errors of a streaming response as EngineError."""
    try:
        yield from chunks
    except (APIError, DockerException) as exc:
        raise EngineError("%s: %s" % (what, one_line(exc)))
    except (OSError, IOError, http.client.HTTPException) as exc:
        raise EngineError("%s: %s" % (what, one_line(exc) or type(exc).__name__))


def _body_source(response):
    # The SDK's iter_content yields each HTTP chunk (32 KiB from the engine) through
    # several generator layers; http.client's readinto decodes the chunked body
    # straight into a buffer instead.
    source = getattr(response.raw, "_fp", None)
    return source if isinstance(source, http.client.HTTPResponse) else response.raw


def read_ahead(read_into, buffer_size=STREAM_BUFFER_SIZE, depth=READ_AHEAD_DEPTH, close=None):
    """Yield memoryviews of buffers that a reader thread fills with ``read_into(buffer)``.

    The engine writes into a socket buffer of a few hundred KiB only, so while
    the consumer hashes and writes one buffer the engine would stall; the reader
    thread keeps draining the socket meanwhile (socket reads, hashing and file
    writes all release the GIL). A view is valid until the next one is
    requested. The consumer runs in the calling thread, so signals and
    exceptions there behave as usual; reader errors are re-raised there too.
    ``close`` is called by the reader thread when it stops, so the source is
    never closed while a read is still running on it.
    """
    free = queue.Queue()
    filled = queue.Queue()
    for _dummy in range(depth):
        free.put(bytearray(buffer_size))

    def reader():
        try:
            while True:
                buffer = free.get()
                if buffer is None:
                    return
                count = read_into(buffer)
                filled.put((buffer, count))
                if not count:
                    return
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            filled.put((None, exc))  # raised in the consumer's thread
        finally:
            if close is not None:
                close()

    thread = threading.Thread(target=reader, name="engine-stream-reader", daemon=True)
    thread.start()
    try:
        while True:
            buffer, count = filled.get()
            if buffer is None:
                raise count
            if not count:
                return
            view = memoryview(buffer)
            try:
                yield view[:count]
            finally:
                view.release()
            free.put(buffer)
    finally:
        free.put(None)
        # A reader still inside a read finishes that buffer and stops; it is a
        # daemon thread, so an engine that stalls cannot keep the module alive.
        thread.join(timeout=1)


def _response_body(response, buffer_size):
    return read_ahead(_body_source(response).readinto, buffer_size, close=response.close)


def stream_get(client, what, url, params=None):
    """GET ``url`` and yield its body as memoryviews of a few reused buffers (see read_ahead).

    A view is only valid until the next one is requested. Connecting is bounded
    by the client's timeout; reading is not, because the engine may think for a
    long time before and between the parts of a big archive.
    """
    response = engine_call(what, client._get, url, params=params, stream=True,
                           timeout=(client.timeout, None))
    engine_call(what, client._raise_for_status, response)
    # as the SDK does for its own streams: no read timeout once the body flows
    client._disable_socket_timeout(client._get_raw_response_socket(response))
    return engine_stream(what, _response_body(response, STREAM_BUFFER_SIZE))


class FileBody:
    """A request body that streams the file at ``path`` with a known length.

    With a length, requests sends ``Content-Length`` and hands each piece to
    the socket as it is; a plain generator would be sent chunked, and urllib3
    copies every piece once more to frame it. One buffer is reused.
    """

    def __init__(self, path, chunk_size=UPLOAD_CHUNK_SIZE):
        self.path = path
        self.chunk_size = chunk_size
        self.size = os.path.getsize(path)

    def __len__(self):
        return self.size

    def __iter__(self):
        buffer = bytearray(self.chunk_size)
        view = memoryview(buffer)
        sent = 0
        with open(self.path, "rb", buffering=0) as fileobj:
            while sent < self.size:
                count = fileobj.readinto(view[:min(self.chunk_size, self.size - sent)])
                if not count:
                    raise OSError("%s became shorter while it was sent" % self.path)
                sent += count
                yield view[:count]


def check_progress(what, messages):
    """Consume the engine's JSON progress stream; raise on an error message. Returns all messages."""
    seen = []
    for message in engine_stream(what, messages):
        if isinstance(message, dict) and (message.get("error") or message.get("errorDetail")):
            detail = message.get("error") or (message.get("errorDetail") or {}).get("message")
            raise EngineError("%s: %s" % (what, " ".join(str(detail).split())))
        seen.append(message)
    return seen


def upload_file(client, what, url, path, params=None, headers=None):
    """POST the file at ``path`` as a stream and consume the engine's progress messages."""
    try:
        body = FileBody(path)
    except OSError as exc:
        raise EngineError("%s: cannot read %s: %s" % (what, path, exc.strerror or exc))
    response = engine_call(
        what, client._post, url, data=body, params=params,
        headers=headers, stream=True, timeout=(client.timeout, None),
    )
    engine_call(what, client._raise_for_status, response)
    return check_progress(what, client._stream_helper(response, decode=True))


def sha256_of_chunks(chunks):
    """``sha256:<hex>`` of a stream of byte chunks, read one chunk at a time."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def inspect_container(client, name):
    """Inspect data of container ``name``; EngineNotFound with one line when there is none."""
    try:
        return engine_call("inspect container %s" % name, client.inspect_container, name)
    except EngineNotFound:
        raise EngineNotFound("container %s does not exist (not found in the engine)" % name)


def container_export_digest(client, container_id, what):
    """``sha256:<hex>`` of the container's filesystem tar as the engine exports it."""
    return sha256_of_chunks(stream_get(client, what, client._url("/containers/{0}/export", container_id)))
