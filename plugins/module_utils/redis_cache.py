# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal redis client for the registry's blob descriptor cache: AUTH, SELECT, DBSIZE, FLUSHDB.

The registry keeps one hash per blob digest in that database; after garbage collection those entries
still claim that freed blobs exist, so the cache database is emptied as a whole (it holds nothing else).
"""

from __future__ import annotations

import socket
import ssl

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError

DEFAULT_PORT = 6379


class RedisCacheError(DockhandError):
    """A failure talking to redis; ``str(exc)`` is one readable line (never the password)."""


def split_address(address):
    """``host:port`` (or ``[v6]:port``, or a bare host) to ``(host, port)``."""
    address = address.strip()
    if address.startswith("["):
        host, _bracket, rest = address[1:].partition("]")
        port = rest.lstrip(":")
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, ""
    if not host:
        raise RedisCacheError("redis address %r has no host" % address)
    try:
        return host, int(port) if port else DEFAULT_PORT
    except ValueError:
        raise RedisCacheError("redis address %r has an invalid port" % address) from None


def encode_command(*words):
    """One RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(words)]
    for word in words:
        data = word if isinstance(word, bytes) else str(word).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RedisConnection:
    """One connection; ``command`` returns the decoded reply or raises RedisCacheError on an error reply."""

    def __init__(self, address, password="", tls=False, ca_cert=None, validate_certs=True, timeout=10):
        host, port = split_address(address)
        self.address = "%s:%d" % (host, port)
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
            if tls:
                context = ssl.create_default_context(cafile=ca_cert)
                if not validate_certs:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                raw = context.wrap_socket(raw, server_hostname=host)
        except (OSError, ssl.SSLError) as exc:
            raise RedisCacheError("cannot connect to redis at %s: %s" % (self.address, exc)) from None
        self.sock = raw
        self.reader = raw.makefile("rb")
        if password:
            self.command("AUTH", password)

    def close(self):
        self.reader.close()
        self.sock.close()

    def command(self, *words):
        try:
            self.sock.sendall(encode_command(*words))
            return self._reply()
        except (OSError, ssl.SSLError) as exc:
            raise RedisCacheError("redis at %s: %s failed: %s" % (self.address, words[0], exc)) from None

    def _reply(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise RedisCacheError("redis at %s closed the connection" % self.address)
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RedisCacheError("redis at %s answered: %s" % (self.address, body.decode(errors="replace")))
        if kind == b":":
            return int(body)
        if kind == b"$":
            size = int(body)
            return None if size < 0 else self.reader.read(size + 2)[:-2]
        if kind == b"*":
            return [self._reply() for _index in range(max(int(body), 0))]
        raise RedisCacheError("redis at %s sent an unexpected reply %r" % (self.address, line[:40]))


def flush_reason(keys, db):
    """Why the cache database needs flushing, or None when it is empty already."""
    if keys <= 0:
        return None
    return "%d cached blob descriptor key(s) in redis db %d" % (keys, db)
