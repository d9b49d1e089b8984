# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Distribution registry processes on 127.0.0.1 for the benchmarks.

Each registry is a ``docker-registry serve`` process with its own config and
filesystem storage; it is stopped by its PID. A storage folder can be saved
as a snapshot and restored, so destructive cases start from the same state
every run without re-pushing anything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import requests

REGISTRY_BINARY = os.environ.get("BENCH_REGISTRY_BINARY", "/usr/bin/docker-registry")
FAKE_V3 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_v3.py")
START_TIMEOUT = 30.0

CONFIG_TEMPLATE = """version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
"""


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackAddress:
    """host and url of something listening on 127.0.0.1:``port``."""

    port = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://%s" % self.host


class Registry(LoopbackAddress):
    """One registry process; ``host`` is ``127.0.0.1:PORT``."""

    def __init__(self, workdir, name):
        self.workdir = os.path.join(workdir, name)
        self.name = name
        self.storage = os.path.join(self.workdir, "storage")
        self.config = os.path.join(self.workdir, "config.yml")
        self.log = os.path.join(self.workdir, "registry.log")
        self.port = None
        self.proc = None

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        os.makedirs(self.storage, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(self.config_text())
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                self.argv(), stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("registry %s exited at start, see %s" % (self.name, self.log))
            try:
                if requests.get(self.url + "/v2/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("registry %s did not answer within %ss" % (self.name, START_TIMEOUT))

    def config_text(self):
        return CONFIG_TEMPLATE.format(storage=self.storage, port=self.port)

    def argv(self):
        return [REGISTRY_BINARY, "serve", self.config]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def cpu_seconds(self):
        """User + system CPU time the registry process has used so far."""
        if self.proc is None:
            return 0.0
        try:
            with open("/proc/%d/stat" % self.proc.pid, encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wipe(self):
        """Stop, empty the storage, start again on the same port."""
        self.stop()
        shutil.rmtree(self.storage, ignore_errors=True)
        return self.start()

    def save_snapshot(self, snapshot_dir):
        """Copy the storage (registry stopped meanwhile) to snapshot_dir."""
        self.stop()
        tmp = snapshot_dir + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.isdir(self.storage):
            shutil.copytree(self.storage, tmp, symlinks=True)
        else:
            os.makedirs(tmp)
        shutil.rmtree(snapshot_dir, ignore_errors=True)
        os.rename(tmp, snapshot_dir)
        return self.start()

    def restore_snapshot(self, snapshot_dir):
        """Replace the storage by a copy of snapshot_dir and restart."""
        self.stop()
        shutil.rmtree(self.storage, ignore_errors=True)
        shutil.copytree(snapshot_dir, self.storage, symlinks=True)
        return self.start()

    def use_storage(self, storage_dir):
        """Serve storage_dir directly (read-only cases: no copy needed)."""
        self.stop()
        self.storage = storage_dir
        return self.start()

    def tags(self, repository):
        """Tag list of a repository (all pages), for checking outcomes."""
        tags = []
        url = "%s/v2/%s/tags/list?n=1000" % (self.url, repository)
        for _page in range(10000):
            resp = requests.get(url, timeout=30)
            if resp.status_code == 404:
                return []
            resp.raise_for_status()
            tags.extend(resp.json().get("tags") or [])
            link = resp.headers.get("Link")
            if not link:
                return tags
            url = requests.compat.urljoin(url, link.split(";")[0].strip("<> "))
        raise RuntimeError("tag list of %s did not end" % repository)


class FakeV3Registry(Registry):
    """The benchmarks' fake of a distribution v3 registry (fake_v3.py): tag delete, one process, same interface.

    Its storage folder has the fake's own layout, so its snapshots are not docker-registry's.
    """

    def argv(self):
        return [sys.executable, FAKE_V3, "--port", str(self.port), "--storage", self.storage]

    def stats(self):
        """The fake's counters of the requests it served since it started."""
        resp = requests.get(self.url + "/_fake/stats", timeout=30)
        resp.raise_for_status()
        return resp.json()


class RegistrySet:
    """All registries started by one benchmark run; stops them all at the end."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.registries = {}

    def get(self, name, kind=Registry):
        if name not in self.registries:
            # Recorded before it starts, so that stop_all() also stops what a failed start left running.
            self.registries[name] = kind(self.workdir, name)
            self.registries[name].start()
        return self.registries[name]

    def stop_all(self):
        for registry in self.registries.values():
            registry.stop()
        self.registries = {}
