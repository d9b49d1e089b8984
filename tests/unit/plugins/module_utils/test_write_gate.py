# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.dockhand.registry.plugins.module_utils.write_gate import DELETE, PUT, PhaseGate, RepositoryGates


class Recorder:
    """Counts holders per kind and remembers the most of each, and whether two kinds ever overlapped."""

    def __init__(self):
        self.lock = threading.Lock()
        self.inside = {PUT: 0, DELETE: 0}
        self.most = {PUT: 0, DELETE: 0}
        self.overlapped = False

    def enter(self, kind):
        with self.lock:
            self.inside[kind] += 1
            self.most[kind] = max(self.most[kind], self.inside[kind])
            if all(self.inside.values()):
                self.overlapped = True

    def leave(self, kind):
        with self.lock:
            self.inside[kind] -= 1


def test_puts_and_deletes_never_overlap():
    gate = PhaseGate()
    recorder = Recorder()

    def step(index):
        kind = PUT if index % 3 else DELETE
        with gate.hold(kind):
            recorder.enter(kind)
            threading.Event().wait(0.001)
            recorder.leave(kind)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(step, range(300)))
    assert not recorder.overlapped
    assert recorder.most[PUT] >= 1 and recorder.most[DELETE] >= 1


def test_holders_of_one_kind_run_together():
    for kind in (PUT, DELETE):
        gate = PhaseGate()
        together = threading.Barrier(3, timeout=5)

        def step(_index, kind=kind, gate=gate, together=together):
            with gate.hold(kind):
                together.wait()  # passes only when all three are inside at once

        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(step, range(3)))


def test_a_waiting_kind_is_not_starved():
    gate = PhaseGate()
    order = []
    put_inside = threading.Event()
    release = threading.Event()

    def long_put():
        with gate.hold(PUT):
            put_inside.set()
            release.wait(5)
        order.append("first put done")

    def delete():
        with gate.hold(DELETE):
            order.append("delete")

    def late_put():
        with gate.hold(PUT):
            order.append("late put")

    threads = [threading.Thread(target=long_put)]
    threads[0].start()
    put_inside.wait(5)
    threads.append(threading.Thread(target=delete))
    threads[1].start()
    deadline = time.monotonic() + 5
    while not gate._waiting[DELETE] and time.monotonic() < deadline:  # pylint: disable=protected-access
        threading.Event().wait(0.01)
    assert gate._waiting[DELETE], "the delete never queued"  # pylint: disable=protected-access
    threads.append(threading.Thread(target=late_put))
    threads[2].start()
    release.set()
    for thread in threads:
        thread.join(5)
    # The late PUT arrived while a DELETE waited: the DELETE goes first.
    assert order.index("delete") < order.index("late put")


def test_repositories_have_their_own_gates():
    gates = RepositoryGates()
    with gates.hold("a", PUT):
        entered = []
        worker = threading.Thread(target=lambda: gates.hold("b", DELETE).__enter__() or entered.append(True))
        worker.start()
        worker.join(5)
        assert entered == [True]
