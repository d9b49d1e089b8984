# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a child process and measure its wall time and peak RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Optional

# GNU time reports the peak RSS of the command it runs from its own wait4().
# Measuring through it matters: a child forked straight from this Python
# process starts with this process's RSS as its high-water mark.
GNU_TIME = "/usr/bin/time"


class CommandFailed(Exception):
    """A set-up or measured command exited non-zero or timed out."""


@dataclass
class Measurement:
    wall: float          # seconds
    max_rss_kib: int     # peak RSS of the biggest process of the tree (see GNU_TIME)
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    cpu: Optional[float] = None          # user + system CPU seconds of the command's process tree
    server_cpu: Optional[float] = None   # CPU seconds the case's registries spent during the run
    round_index: Optional[int] = None     # which A B A B round the run belongs to
    not_noop: bool = False                # a re-run that should have done nothing reported a change


def measure(argv, env=None, cwd=None, timeout=600.0, stdin_path=None):
    """Run argv once; wall time from fork to reap, peak RSS from wait4().

    wait4() reports the RSS high-water mark of the child and of every
    descendant it reaped, i.e. the biggest process of the tree that did
    the work, without polling.
    """
    rss_file = None
    if os.access(GNU_TIME, os.X_OK):
        handle, rss_file = tempfile.mkstemp(prefix="bench-rss-")
        os.close(handle)
        argv = [GNU_TIME, "-f", "%M %U %S", "-o", rss_file, "--"] + list(argv)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    stdin_f = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # pylint: disable=consider-using-with
    chunks = {out_r: [], err_r: []}

    def drain(fd):
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            chunks[fd].append(data)
        os.close(fd)

    start = time.perf_counter()
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        argv, env=env, cwd=cwd, stdin=stdin_f, stdout=out_w, stderr=err_w, start_new_session=True)
    os.close(out_w)
    os.close(err_w)
    readers = [threading.Thread(target=drain, args=(fd,), daemon=True) for fd in (out_r, err_r)]
    for reader in readers:
        reader.start()
    timed_out = []

    def kill_tree():
        timed_out.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill_tree)
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(30)
    if stdin_path:
        stdin_f.close()
    max_rss = usage.ru_maxrss
    cpu = usage.ru_utime + usage.ru_stime
    if rss_file:
        with open(rss_file, encoding="utf-8") as handle:
            last = ((handle.read().strip().splitlines() or [""])[-1]).split()
        os.unlink(rss_file)
        if len(last) == 3 and last[0].isdigit():
            max_rss = int(last[0])
            cpu = float(last[1]) + float(last[2])
    return Measurement(
        wall=wall,
        max_rss_kib=max_rss,
        cpu=cpu,
        returncode=proc.returncode,
        stdout=b"".join(chunks[out_r]).decode("utf-8", "replace"),
        stderr=b"".join(chunks[err_r]).decode("utf-8", "replace"),
        timed_out=bool(timed_out),
    )


def check_call(argv, env=None, timeout=1800.0, what=None, cwd=None):
    """Run a set-up command; raise CommandFailed with its output on failure."""
    result = measure(argv, env=env, timeout=timeout, cwd=cwd)
    if result.returncode != 0 or result.timed_out:
        raise CommandFailed("%s failed (rc=%s%s): %s %s" % (
            what or " ".join(argv), result.returncode, ", timed out" if result.timed_out else "",
            result.stdout[-2000:], result.stderr[-2000:]))
    return result
