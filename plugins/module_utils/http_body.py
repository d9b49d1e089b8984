# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a whole HTTP body by a deadline, however slowly the server sends it.

urllib3's read timeout bounds each wait on the socket, not the request: a server
that sends one byte a second never trips it. Here each wait is cut to the time
left before the deadline, and the deadline is checked between reads.
"""

from __future__ import annotations

import time

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError

# Bodies read whole (not blobs): tag and catalog pages, manifests, error bodies, token answers.
MAX_BODY_BYTES = 16 * 1024 * 1024
# One socket read of such a body; small, as the deadline is checked between reads.
BODY_CHUNK_SIZE = 64 * 1024
# A socket timeout this close to the deadline is the deadline.
DEADLINE_SLACK = 0.05


class BodyDeadline(DockhandError):
    """The body did not arrive completely before the deadline."""


class BodyTooLarge(DockhandError):
    """The body is larger than MAX_BODY_BYTES."""


def _limit_socket_wait(raw, seconds: float) -> None:
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(seconds, 0.001))
        except OSError:
            pass  # the socket is gone: the next read says so


def read_body(raw, deadline: float, limit: int = MAX_BODY_BYTES, decode: bool = False) -> bytes:
    """All of the body of the urllib3 response ``raw``, by ``deadline`` (a ``time.monotonic()`` value).

    ``decode`` undoes a Content-Encoding (gzip), which requests asks for. Raises BodyDeadline
    or BodyTooLarge; gives the connection back to its pool once read.
    """
    parts = []
    total = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BodyDeadline()
        _limit_socket_wait(raw, left)
        try:
            chunk = raw.read1(BODY_CHUNK_SIZE, decode_content=decode)
        except Exception:
            # The socket wait cut to the deadline ran out: say so, not "no answer".
            if time.monotonic() >= deadline - DEADLINE_SLACK:
                raise BodyDeadline()
            raise
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge()
        parts.append(chunk)
    raw.release_conn()
    return b"".join(parts)
