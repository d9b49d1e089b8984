# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keeps manifest PUTs and manifest DELETEs of one repository apart, within one run.

On distribution 2.x a manifest DELETE first removes the revision, then reads the
link file of every tag of the repository to untag those on the deleted digest. A
manifest PUT under a tag rewrites that tag's link file in place, so a DELETE that
reads it half written fails with 500 "invalid checksum digest format" after the
revision is gone but before any tag was untagged: the tags stay listed and answer
404 (dangling). PUTs never read other tags, and DELETEs tolerate each other, so only
the two kinds must not overlap: PUTs run together, DELETEs run together, and the
gate alternates between them.
"""

from __future__ import annotations

import contextlib
import threading

PUT = "put"
DELETE = "delete"


class PhaseGate:
    """Lets any number of holders of one kind in at a time, never two kinds at once.

    When the other kind is waiting, newcomers of the running kind wait too, and the
    gate hands over to the other kind once the running holders have left, so
    neither kind starves.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._running = None
        self._holders = 0
        self._last = None
        self._waiting = {PUT: 0, DELETE: 0}

    def _others_waiting(self, kind) -> bool:
        return any(count for other, count in self._waiting.items() if other != kind)

    def _may_enter(self, kind) -> bool:
        if self._running is None:
            # Hand over: the kind that ran last lets a waiting other kind go first.
            return not (kind == self._last and self._others_waiting(kind))
        return self._running == kind and not self._others_waiting(kind)

    @contextlib.contextmanager
    def hold(self, kind):
        with self._condition:
            self._waiting[kind] += 1
            try:
                while not self._may_enter(kind):
                    self._condition.wait()
            finally:
                self._waiting[kind] -= 1
            self._running = kind
            self._holders += 1
        try:
            yield
        finally:
            with self._condition:
                self._holders -= 1
                if self._holders == 0:
                    self._last = self._running
                    self._running = None
                self._condition.notify_all()


class RepositoryGates:
    """One PhaseGate per repository, created on first use (thread safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._gates = {}

    def hold(self, repository: str, kind: str):
        with self._lock:
            gate = self._gates.get(repository)
            if gate is None:
                gate = self._gates[repository] = PhaseGate()
        return gate.hold(kind)
