# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker Engine API, as the engine modules use it.

Modules build their argument spec from ``engine_argument_spec()``, get a
client from ``connect_engine()`` and then call only the named functions of
this file (``inspect_image``, ``save_images``, ``load_archive``,
``export_container``, ``import_archive``, ``commit_container``, ...), so a
change of the Docker SDK touches this file alone. Every failure is raised as
an ``EngineError`` with one readable line, which ``main()`` turns into
``fail_json``.

The raw requests that the SDK has no public method for are built in one
marked section below ("Raw Engine API requests"); nothing else in the
collection relies on the SDK's (or urllib3's) internals.
"""

from __future__ import annotations

import codecs
import http.client
import json
import os
import queue
import threading
import traceback
import urllib.parse

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError, kind_words, one_line
from ansible_collections.dockhand.registry.plugins.module_utils.oci import sha256_digest_of_chunks

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
# Seconds to wait for an answer from the engine API (the engine doc fragment's timeout default); not
# registry_options.DEFAULT_TIMEOUT, which bounds one registry request.
ENGINE_TIMEOUT = 60
# Big reads keep the per-read Python overhead negligible next to hashing and
# writing; the buffer is reused, so memory does not grow with the stream.
STREAM_BUFFER_SIZE = 1024 * 1024
# Buffers the reader thread may fill ahead of the consumer (memory: depth x size).
READ_AHEAD_DEPTH = 4
UPLOAD_CHUNK_SIZE = 1024 * 1024
# The engine's error bodies and progress messages are small JSON documents;
# anything bigger is not one, and is not read into memory.
MAX_ERROR_BODY = 64 * 1024
MAX_PROGRESS_MESSAGE = 1024 * 1024
CONTAINERD_SNAPSHOTTER_DRIVER_TYPE = "io.containerd.snapshotter.v1"
# What the OSError under the SDK's wrappers means for reaching the engine's socket.
CONNECTION_FAILURE_WORDS = ((FileNotFoundError, "no such socket"), (ConnectionRefusedError, "connection refused"),
                            (PermissionError, "permission denied"))


class EngineError(DockhandError):
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
            type="int", default=ENGINE_TIMEOUT, fallback=(env_fallback, ["DOCKER_TIMEOUT"]),
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
    """Return a ``docker.APIClient`` that has answered a ping, or raise EngineError."""
    host = params.get("docker_host") or DEFAULT_DOCKER_HOST
    timeout = params.get("timeout") or ENGINE_TIMEOUT
    try:
        client = docker.APIClient(
            base_url=host,
            version=params.get("api_version") or "auto",
            timeout=timeout,
            tls=_tls_config(params),
        )
        # "auto" has asked the engine for its version already; a fixed version has not,
        # and a dead engine should fail here, with the same line, in both cases.
        client.ping()
    except (DockerException, OSError) as exc:
        raise EngineError("cannot reach the Docker engine at %s: %s"
                          % (host, describe_connection_error(exc, timeout)))
    return client


def describe_connection_error(exc, timeout):
    """Why the engine could not be reached, in words rather than the SDK's nested reprs."""
    pending = [exc]
    seen = set()
    while pending and len(seen) < 32:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TimeoutError) or "Timeout" in type(current).__name__:
            return "no answer within %s seconds" % timeout
        words = kind_words(current, CONNECTION_FAILURE_WORDS)
        if words:
            return words
        if isinstance(current, APIError):
            return engine_explanation(current)
        # requests and urllib3 wrap the OSError that says what happened
        pending.extend(getattr(current, "args", ()))
        pending.extend((getattr(current, "reason", None), current.__cause__, current.__context__))
    return one_line(exc) or type(exc).__name__


def engine_explanation(exc):
    """The engine's explanation of ``exc`` (an SDK APIError says it best), on a single line."""
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode("utf-8", "replace") if isinstance(explanation, bytes) else explanation
    return one_line(text or str(exc))


def engine_call(what, func, *args, **kwargs):
    """Run one SDK call, turning SDK exceptions into EngineError/EngineNotFound."""
    try:
        return func(*args, **kwargs)
    except NotFound as exc:
        raise EngineNotFound("%s: %s" % (what, engine_explanation(exc)))
    except (APIError, DockerException) as exc:
        raise EngineError("%s: %s" % (what, engine_explanation(exc)))
    except (OSError, IOError) as exc:
        raise EngineError("%s: %s" % (what, engine_explanation(exc)))


def engine_stream(what, chunks):
    """Re-raise SDK and connection errors of a streaming response as EngineError."""
    try:
        yield from chunks
    except (APIError, DockerException) as exc:
        raise EngineError("%s: %s" % (what, engine_explanation(exc)))
    except (OSError, IOError, http.client.HTTPException) as exc:
        raise EngineError("%s: %s" % (what, engine_explanation(exc) or type(exc).__name__))


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
            raise EngineError("%s: %s" % (what, one_line(detail)))
        seen.append(message)
    return seen


# --------------------------------------------------------------------------- Raw Engine API requests
# The endpoints below have no public SDK method that streams (or that takes
# several names), so they are sent here with the client's public requests
# interface (``docker.APIClient`` is a ``requests.Session`` with ``base_url``
# and ``api_version``). This section is the only code in the collection that
# relies on anything private: ``_readinto_source`` reads urllib3's ``_fp``.


def _api_url(client, path, *path_args):
    """The versioned URL of ``path``; ``{0}``... are filled with the quoted ``path_args``."""
    quoted = [urllib.parse.quote(arg, safe="/:") for arg in path_args]
    return "%s/v%s%s" % (client.base_url, client.api_version, path.format(*quoted))


def _error_message(response):
    """The engine's explanation from an error response (JSON ``message`` or text), one line."""
    try:
        body = response.raw.read(MAX_ERROR_BODY) or b""
    except (OSError, http.client.HTTPException):
        body = b""
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        text = document["message"]
    return " ".join(text.split()) or "HTTP %d %s" % (response.status_code, response.reason or "")


def _request(client, what, method, url, **kwargs):
    """Send one streaming request; raise EngineNotFound (404) or EngineError for an error answer.

    Connecting is bounded by the client's timeout; reading is not, because the
    engine may think for a long time before and between the parts of a big archive.
    """
    try:
        response = client.request(method, url, stream=True, timeout=(client.timeout, None), **kwargs)
    except OSError as exc:  # requests' exceptions are OSErrors
        raise EngineError("%s: %s" % (what, describe_connection_error(exc, client.timeout)))
    if response.status_code >= 400:
        message = _error_message(response)
        response.close()
        error = EngineNotFound if response.status_code == 404 else EngineError
        raise error("%s: %s" % (what, message))
    return response


def _readinto_source(response):
    # requests' iter_content yields each HTTP chunk (32 KiB from the engine)
    # through several generator layers, and urllib3's readinto copies once more;
    # the http.client response under it decodes the chunked body straight into
    # the caller's buffer. That response is urllib3's private ``_fp``: when it is
    # not there, the public (slower) urllib3 readinto is used.
    source = getattr(response.raw, "_fp", None)
    if isinstance(source, http.client.HTTPResponse):
        return source.readinto
    return response.raw.readinto


def _stream_body(client, what, url, params=None):
    """GET ``url`` and yield its body as memoryviews of a few reused buffers (see read_ahead)."""
    response = _request(client, what, "GET", url, params=params)
    return engine_stream(what, read_ahead(_readinto_source(response), close=response.close))


def _json_messages(what, response):
    """The JSON objects of a progress stream (the engine separates them by CRLF, or not at all)."""
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")("replace")
    buffered = ""
    try:
        for chunk in response.iter_content(chunk_size=64 * 1024):
            buffered += text.decode(chunk)
            while True:
                buffered = buffered.lstrip()
                if not buffered:
                    break
                try:
                    message, end = decoder.raw_decode(buffered)
                except ValueError:
                    if len(buffered) > MAX_PROGRESS_MESSAGE:
                        raise EngineError("%s: the engine's answer is not a JSON progress stream" % what)
                    break
                buffered = buffered[end:]
                yield message
    finally:
        response.close()
    if buffered.strip():
        raise EngineError("%s: the engine's answer ends in the middle of a message" % what)


def _upload(client, what, url, path, params=None, headers=None):
    """POST the file at ``path`` as a stream; return the engine's progress messages."""
    try:
        body = FileBody(path)
    except OSError as exc:
        raise EngineError("%s: cannot read %s: %s" % (what, path, exc.strerror or exc))
    response = _request(client, what, "POST", url, data=body, params=params, headers=headers)
    return check_progress(what, _json_messages(what, response))


# --------------------------------------------------------------------------- the named Engine API


def inspect_image(client, name):
    """Inspect data of image ``name`` (tag, ID or digest), or None when the engine has no such image."""
    try:
        return engine_call("inspect image %s" % name, client.inspect_image, name)
    except EngineNotFound:
        return None


def inspect_container(client, name):
    """Inspect data of container ``name``; EngineNotFound with one line when there is none."""
    try:
        return engine_call("inspect container %s" % name, client.inspect_container, name)
    except EngineNotFound:
        raise EngineNotFound("container %s does not exist (not found in the engine)" % name)


def list_images(client):
    """The engine's image summaries (``docker image ls --all``): Id, RepoTags, Created (seconds), ..."""
    return engine_call("list images", client.images, all=True)


def image_history(client, name):
    """The history entries of image ``name``, newest first (``docker image history``)."""
    return engine_call("read the history of image %s" % name, client.history, name)


def image_store(client):
    """``containerd`` when the engine keeps images in the containerd image store, else ``graphdriver``."""
    info = engine_call("read the engine's info", client.info)
    for entry in info.get("DriverStatus") or []:
        if isinstance(entry, list) and entry[:2] == ["driver-type", CONTAINERD_SNAPSHOTTER_DRIVER_TYPE]:
            return "containerd"
    return "graphdriver"


def commit_container(client, container_id, repository, tag, **options):
    """Commit the container (``docker commit``); returns the inspect data of the new image.

    ``options`` are those of the SDK's ``commit``: message, author, pause, changes, conf.
    """
    what = "commit container %s" % container_id[:12]
    committed = engine_call(what, client.commit, container_id, repository=repository, tag=tag, **options)
    image = inspect_image(client, committed["Id"])
    if image is None:
        raise EngineError("%s: the engine reported image %s but does not have it" % (what, committed["Id"]))
    return image


def save_images(client, names):
    """Stream the archive of ``names`` (references or IDs) as ``docker save`` writes it.

    Yields memoryviews of a few reused buffers; a view is valid until the next
    one is requested. The SDK's ``get_image`` takes one name only.
    """
    return _stream_body(client, "save images", _api_url(client, "/images/get"),
                        params={"names": list(names)})


def load_archive(client, path):
    """Stream the image archive at ``path`` (plain or gzip) into the engine; returns its messages."""
    return _upload(client, "load archive", _api_url(client, "/images/load"), path,
                   params={"quiet": "1"})


def export_container(client, container_id, what="export container"):
    """Stream the container's filesystem tar (``docker export``), as ``save_images`` does."""
    return _stream_body(client, what, _api_url(client, "/containers/{0}/export", container_id))


def import_archive(client, path, repository, tag, changes, message=None):
    """Create ``repository:tag`` from the filesystem tar at ``path`` (``docker import``)."""
    params = {"fromSrc": "-", "repo": repository, "tag": tag, "changes": list(changes)}
    if message:
        params["message"] = message
    return _upload(client, "import archive", _api_url(client, "/images/create"), path,
                   params=params, headers={"Content-Type": "application/tar"})


def container_export_digest(client, container_id, what):
    """``sha256:<hex>`` of the container's filesystem tar as the engine exports it."""
    return sha256_digest_of_chunks(export_container(client, container_id, what))
