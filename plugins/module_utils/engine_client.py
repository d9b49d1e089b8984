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

import http.client
import os
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
UPLOAD_CHUNK_SIZE = 4 * 1024 * 1024


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


def _read_into_buffer(response, buffer_size):
    # The SDK's iter_content yields each HTTP chunk (32 KiB from the engine) through
    # several generator layers; http.client's readinto decodes the chunked body
    # straight into one reused buffer instead.
    source = getattr(response.raw, "_fp", None)
    if not isinstance(source, http.client.HTTPResponse):
        source = response.raw
    buffer = bytearray(buffer_size)
    view = memoryview(buffer)
    try:
        while True:
            count = source.readinto(buffer)
            if not count:
                return
            yield view[:count]
    finally:
        view.release()
        response.close()


def stream_get(client, what, url, params=None):
    """GET ``url`` and yield its body as memoryviews of one reused buffer.

    A view is only valid until the next one is requested. Connecting is bounded
    by the client's timeout; reading is not, because the engine may think for a
    long time before and between the parts of a big archive.
    """
    response = engine_call(what, client._get, url, params=params, stream=True,
                           timeout=(client.timeout, None))
    engine_call(what, client._raise_for_status, response)
    return engine_stream(what, _read_into_buffer(response, STREAM_BUFFER_SIZE))


def _file_chunks(path):
    with open(path, "rb") as fileobj:
        yield from iter(lambda: fileobj.read(UPLOAD_CHUNK_SIZE), b"")


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
    response = engine_call(
        what, client._post, url, data=engine_stream(what, _file_chunks(path)), params=params,
        headers=headers, stream=True, timeout=(client.timeout, None),
    )
    engine_call(what, client._raise_for_status, response)
    return check_progress(what, client._stream_helper(response, decode=True))
