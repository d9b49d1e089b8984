# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import io

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.redis_cache import (
    RedisCacheError,
    RedisConnection,
    encode_command,
    flush_reason,
    split_address,
)


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:6380", ("127.0.0.1", 6380)),
    ("redis.example.com", ("redis.example.com", 6379)),
    ("[::1]:7000", ("::1", 7000)),
    ("[::1]", ("::1", 6379)),
])
def test_split_address(address, expected):
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["", ":6379", "host:port"])
def test_split_address_rejects(address):
    with pytest.raises(RedisCacheError):
        split_address(address)


def test_encode_command_is_resp_bulk_strings():
    assert encode_command("SELECT", 3) == b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"


def test_flush_reason():
    assert flush_reason(0, 2) is None
    assert flush_reason(5, 2) == "5 cached blob descriptor key(s) in redis db 2"


def _connection_reading(data):
    connection = RedisConnection.__new__(RedisConnection)
    connection.address = "127.0.0.1:6379"
    connection.reader = io.BytesIO(data)
    return connection


def test_replies_are_decoded():
    connection = _connection_reading(b"+OK\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n+x\r\n")
    assert [connection._reply() for _index in range(5)] == ["OK", 42, b"abc", None, [1, "x"]]


def test_error_reply_is_one_line_without_the_command():
    connection = _connection_reading(b"-WRONGPASS invalid username-password pair\r\n")
    with pytest.raises(RedisCacheError, match="^redis at 127.0.0.1:6379 answered: WRONGPASS"):
        connection._reply()


def test_closed_connection():
    with pytest.raises(RedisCacheError, match="closed the connection"):
        _connection_reading(b"")._reply()
