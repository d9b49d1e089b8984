# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import http.client
import http.server
import io
import os
import shutil
import socket
import socketserver
import tempfile
import threading
import time

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.engine_client import (
    EngineError,
    EngineNotFound,
    FileBody,
    connect_engine,
    engine_stream,
    export_container,
    load_archive,
    read_ahead,
    save_images,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import sha256_digest_of_chunks


class ChunkSource:
    """read_into over fixed pieces, like a socket that returns what has arrived."""

    def __init__(self, pieces, fail_after=None):
        self.pieces = list(pieces)
        self.fail_after = fail_after
        self.calls = 0
        self.closed = threading.Event()

    def read_into(self, buffer):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise http.client.IncompleteRead(b"", 10)
        if not self.pieces:
            return 0
        piece = self.pieces.pop(0)[:len(buffer)]
        buffer[:len(piece)] = piece
        return len(piece)

    def close(self):
        self.closed.set()


def test_read_ahead_yields_everything_in_order_and_closes():
    pieces = [bytes([n]) * (100 + n) for n in range(50)]
    source = ChunkSource(pieces)
    received = b"".join(bytes(view) for view in read_ahead(source.read_into, 4096, depth=3, close=source.close))
    assert received == b"".join(pieces)
    assert source.closed.wait(5)


def test_read_ahead_reuses_a_bounded_number_of_buffers():
    source = ChunkSource([b"x" * 10] * 20)
    buffers = set()
    for view in read_ahead(source.read_into, 16, depth=2):
        buffers.add(id(view.obj))
    assert len(buffers) <= 2


def test_read_ahead_reraises_reader_errors_in_the_consumer():
    source = ChunkSource([b"a" * 10] * 5, fail_after=2)
    with pytest.raises(EngineError, match="save images: "):
        for _view in engine_stream("save images", read_ahead(source.read_into, 16, close=source.close)):
            pass
    assert source.closed.wait(5)


def test_read_ahead_stops_the_reader_when_the_consumer_stops():
    source = ChunkSource([b"b" * 10] * 100)
    stream = read_ahead(source.read_into, 16, depth=2, close=source.close)
    next(stream)
    stream.close()
    assert source.closed.wait(5)
    assert source.calls < 100


def test_sha256_of_chunks_accepts_memoryviews():
    data = io.BytesIO(b"0123456789" * 1000)
    views = [memoryview(chunk) for chunk in iter(lambda: data.read(333), b"")]
    assert sha256_digest_of_chunks(views) == "sha256:" + hashlib.sha256(b"0123456789" * 1000).hexdigest()


def test_file_body_streams_the_file_with_its_length(tmp_path):
    data = bytes(range(256)) * 50
    path = tmp_path / "archive.tar"
    path.write_bytes(data)
    body = FileBody(str(path), chunk_size=1000)
    assert len(body) == len(data)
    assert b"".join(bytes(view) for view in body) == data


def test_file_body_refuses_a_file_that_shrinks(tmp_path):
    path = tmp_path / "archive.tar"
    path.write_bytes(b"x" * 5000)
    body = FileBody(str(path), chunk_size=1000)
    path.write_bytes(b"x" * 1500)
    with pytest.raises(OSError, match="became shorter"):
        for _view in body:
            pass


# --------------------------------------------------------------------------- against a fake engine
# A real HTTP server on a unix socket, so the SDK client, requests and urllib3
# run as they do against an engine; only the engine's answers are made up.


class FakeEngineHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes = {}

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # quiet; and a unix socket has no client address to log

    def _answer(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        self.server.received[path] = self.rfile.read(length) if length else b""
        if path.endswith("/_ping"):
            status, pieces = 200, [b"OK"]
        else:
            status, pieces = self.routes.get(path, (404, [b'{"message": "page not found"}']))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            if isinstance(piece, float):
                time.sleep(piece)  # the engine thinks
                continue
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = _answer


@pytest.fixture
def fake_engine():
    """(start(routes) -> client params, received bodies); routes: path -> (status, pieces)."""
    folder = tempfile.mkdtemp(prefix="dh-engine-", dir="/tmp")  # unix socket paths are short
    socket_path = os.path.join(folder, "engine.sock")
    servers = []

    def start(routes):
        handler = type("Handler", (FakeEngineHandler,), {"routes": routes})
        server = socketserver.ThreadingUnixStreamServer(socket_path, handler)
        server.daemon_threads = True
        server.received = {}
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return {"docker_host": "unix://" + socket_path, "api_version": "1.41", "timeout": 1}, server.received

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    shutil.rmtree(folder, ignore_errors=True)


def test_error_answers_become_one_line(fake_engine):
    params, _received = fake_engine({
        "/v1.41/images/get": (404, [b'{"message": "reference does not exist:\\n no such image"}']),
        "/v1.41/containers/c1/export": (500, [b"the engine\nbroke"]),
    })
    client = connect_engine(params)
    with pytest.raises(EngineNotFound, match="^save images: reference does not exist: no such image$"):
        list(save_images(client, ["app:1"]))
    with pytest.raises(EngineError, match="^export container: the engine broke$"):
        list(export_container(client, "c1"))


def test_progress_messages_with_and_without_separators(fake_engine, tmp_path):
    params, received = fake_engine({
        "/v1.41/images/load": (200, [b'{"stream": "Loaded image: a:1\\n"}\r\n{"stream": "Loaded ',
                                     b'image ID: sha256:ab\\n"}{"status": "done"}']),
    })
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"archive bytes" * 1000)
    messages = load_archive(connect_engine(params), str(archive))
    assert messages == [{"stream": "Loaded image: a:1\n"}, {"stream": "Loaded image ID: sha256:ab\n"},
                        {"status": "done"}]
    assert received["/v1.41/images/load"] == archive.read_bytes(), "the file is streamed as it is"


@pytest.mark.parametrize("pieces, message", [
    ([b'{"stream": "x"}', b'{"errorDetail": {"message": "unexpected EOF"}, "error": "unexpected EOF"}'],
     "^load archive: unexpected EOF$"),
    ([b'{"stream": "x"}{"stre'], "ends in the middle of a message"),
])
def test_progress_errors_become_one_line(fake_engine, tmp_path, pieces, message):
    params, _received = fake_engine({"/v1.41/images/load": (200, pieces)})
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"x")
    with pytest.raises(EngineError, match=message):
        load_archive(connect_engine(params), str(archive))


def test_streams_are_not_cut_by_the_timeout(fake_engine):
    # timeout is 1 s; the engine thinks 1.5 s before the body and between its parts
    params, _received = fake_engine({"/v1.41/images/get": (200, [1.5, b"a" * 1000, 1.5, b"b" * 1000])})
    body = b"".join(bytes(view) for view in save_images(connect_engine(params), ["app:1"]))
    assert body == b"a" * 1000 + b"b" * 1000


def test_an_engine_that_never_answers(tmp_path):
    folder = tempfile.mkdtemp(prefix="dh-silent-", dir="/tmp")
    path = os.path.join(folder, "silent.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(4)
    try:
        started = time.monotonic()
        with pytest.raises(EngineError, match="^cannot reach the Docker engine at unix://%s: no answer within 1 seconds$" % path):
            connect_engine({"docker_host": "unix://" + path, "timeout": 1})
        assert time.monotonic() - started < 30
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_no_engine_at_the_socket(tmp_path):
    path = str(tmp_path / "none.sock")
    with pytest.raises(EngineError, match="^cannot reach the Docker engine at unix://%s: no such socket$" % path):
        connect_engine({"docker_host": "unix://" + path, "timeout": 1})
