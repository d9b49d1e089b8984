# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark fixtures: big random images in the engine, small images in registries.

Big images get incompressible layers (a container writes /dev/urandom, then
it is committed, one layer per step) and are kept in the engine between
runs. Small registry images are pushed straight over the HTTP API: a shared
tiny layer plus a per-image config, so every tag can be a distinct image.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

from .procs import check_call

BASE_IMAGE = "dockhand-test/busybox:latest"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def image_id(name, env):
    """Image ID of name in the engine, or None."""
    result = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", name],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def build_random_image(name, layer_mib, env, log=print):
    """Make image `name` with one random layer of each size in layer_mib (MiB); reuse it if present."""
    existing = image_id(name, env)
    if existing:
        return existing
    if not image_id(BASE_IMAGE, env):
        raise RuntimeError("base image %s is missing: run the project's bootstrap first" % BASE_IMAGE)
    log("building %s (%s MiB of random layers)" % (name, sum(layer_mib)))
    parent = BASE_IMAGE
    container = "dockhand-bench-build-%d" % int(time.time() * 1000)
    for index, size in enumerate(layer_mib):
        check_call(["docker", "rm", "-f", container], env=env, timeout=120)
        check_call(["docker", "run", "--name", container, "--network", "none", parent, "sh", "-c",
                    "dd if=/dev/urandom of=/random-%d bs=1048576 count=%d 2>/dev/null" % (index, size)],
                   env=env, timeout=900, what="writing layer %d of %s" % (index, name))
        parent = check_call(["docker", "commit", container], env=env, timeout=900).stdout.strip()
        check_call(["docker", "rm", "-f", container], env=env, timeout=120)
    check_call(["docker", "tag", parent, name], env=env, timeout=120)
    return image_id(name, env)


def remove_image(name, env):
    subprocess.run(["docker", "rmi", name], env=env, capture_output=True, timeout=600, check=False)


def _sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def small_layer():
    """A tiny gzip layer (one file); returns (blob bytes, blob digest, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        payload = b"dockhand benchmark layer\n"
        info = tarfile.TarInfo("bench.txt")
        info.size = len(payload)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))
    raw_bytes = raw.getvalue()
    blob = gzip.compress(raw_bytes, mtime=0)
    return blob, _sha256(blob), _sha256(raw_bytes)


def small_config(diff_id, created, label):
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"Labels": {"dockhand.bench": label}, "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "dockhand benchmark"}],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def small_manifest(config, layer):
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_V2,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": _sha256(config)},
        "layers": [{"mediaType": DOCKER_LAYER, "size": len(layer), "digest": _sha256(layer)}],
    }
    return json.dumps(manifest, indent=3).encode()


def iso_time(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _load_seed_pusher():
    """The test bed's registry pusher (tests/testbed/seed_registry.py), shared rather than copied."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "tests", "testbed", "seed_registry.py")
    spec = importlib.util.spec_from_file_location("dockhand_seed_registry", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Pusher


class Pusher(_load_seed_pusher()):
    """The test bed's pusher plus the benchmarks' bounded parallel runner."""

    def __init__(self, base_url, workers=8):
        super().__init__(base_url)
        self.workers = workers

    def put_manifest(self, repository, reference, body):
        return self.push_manifest(repository, reference, body, DOCKER_V2)

    def run_all(self, func, items):
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(func, items))


def seed_distinct_tags(base_url, repository, tags, created_start=1577836800, created_step=3600):
    """One distinct small image per tag; tag i is created at created_start + i*step."""
    pusher = Pusher(base_url)
    layer, _layer_digest, diff_id = small_layer()
    pusher.push_blob(repository, layer)

    def push(item):
        index, tag = item
        config = small_config(diff_id, iso_time(created_start + index * created_step), "%s:%s" % (repository, tag))
        pusher.push_blob(repository, config)
        pusher.put_manifest(repository, tag, small_manifest(config, layer))

    pusher.run_all(push, list(enumerate(tags)))


def seed_same_image_tags(base_url, repository, tags):
    """Many tags on one small image."""
    pusher = Pusher(base_url)
    layer, _layer_digest, diff_id = small_layer()
    config = small_config(diff_id, iso_time(1577836800), repository)
    pusher.push_blob(repository, layer)
    pusher.push_blob(repository, config)
    body = small_manifest(config, layer)
    pusher.run_all(lambda tag: pusher.put_manifest(repository, tag, body), tags)


def seed_repositories(base_url, repositories, tag="latest"):
    """Many repositories holding the same small image (blobs mounted from the first)."""
    pusher = Pusher(base_url)
    layer, layer_digest, diff_id = small_layer()
    config = small_config(diff_id, iso_time(1577836800), "catalog")
    body = small_manifest(config, layer)
    first = repositories[0]
    pusher.push_blob(first, layer)
    config_digest = pusher.push_blob(first, config)
    pusher.put_manifest(first, tag, body)

    def push(repository):
        pusher.mount_blob(repository, layer_digest, first)
        pusher.mount_blob(repository, config_digest, first)
        pusher.put_manifest(repository, tag, body)

    pusher.run_all(push, repositories[1:])
