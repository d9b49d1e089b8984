# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import http.client
import io
import threading

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.engine_client import (
    EngineError,
    FileBody,
    engine_stream,
    read_ahead,
    sha256_of_chunks,
)


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
    assert sha256_of_chunks(views) == "sha256:" + hashlib.sha256(b"0123456789" * 1000).hexdigest()


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
