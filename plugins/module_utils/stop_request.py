# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGTERM as a request to stop: writes in flight finish or are undone, none starts.

Killing a registry module between the two writes of a safe single-tag delete would
leave the tag on a throw-away manifest. With ``stop_on_sigterm`` the signal only
sets a flag; the workers check it before each step and between the two writes, and
point a tag that is inside that window back at its image before the module fails
with one line.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class StopRequest:
    """A flag set by SIGTERM (or by ``request()``), shared by every worker of a run."""

    def __init__(self):
        self._event = threading.Event()

    def request(self, *_signal_args) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()


@contextlib.contextmanager
def stop_on_sigterm():
    """Yield a StopRequest that SIGTERM sets, for as long as the block runs (main thread only)."""
    stop = StopRequest()
    try:
        previous = signal.signal(signal.SIGTERM, stop.request)
    except ValueError:
        # Not the main thread (a test runner): nobody can deliver the signal here anyway.
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)
