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


OCI_LAYOUT_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
RANDOM_CHUNK = 1 << 20


class _HashingWriter:
    """Writes through to ``target`` and hashes what passes (the uncompressed tar: the layer's diff_id)."""

    def __init__(self, target):
        self.target = target
        self.hash = hashlib.sha256()

    def write(self, data):
        self.hash.update(data)
        return self.target.write(data)


class _RandomReader:
    """``size`` bytes from os.urandom, read in chunks."""

    def __init__(self, size):
        self.left = size

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        return os.urandom(size) if size else b""


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(RANDOM_CHUNK), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def write_random_oci_layout(path, layer_mib, tag, log=print):
    """An OCI image layout at ``path`` holding ``tag``: one random gzip layer per size in layer_mib (MiB).

    Written straight from os.urandom, without an engine; gzip level 1, since random data does
    not shrink anyway and skopeo pushes compressed layers as they are. Returns the manifest digest.
    An existing layout (index.json written last) is reused.
    """
    index_path = os.path.join(path, "index.json")
    if os.path.isfile(index_path):
        with open(index_path, encoding="utf-8") as handle:
            return json.load(handle)["manifests"][0]["digest"]
    log("writing an OCI layout of %s MiB of random layers at %s (cached for later runs)" % (sum(layer_mib), path))
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def add_blob(data):
        digest = _sha256(data)
        with open(os.path.join(blobs, digest.split(":", 1)[1]), "wb") as handle:
            handle.write(data)
        return {"digest": digest, "size": len(data)}

    layers, diff_ids = [], []
    for index, size in enumerate(layer_mib):
        tmp = os.path.join(path, "layer-%d.tmp" % index)
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as compressed:
                hashing = _HashingWriter(compressed)
                with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
                    info = tarfile.TarInfo("random-%d" % index)
                    info.size = size << 20
                    info.mtime = 0
                    tar.addfile(info, _RandomReader(info.size))
        digest = _sha256_file(tmp)
        os.rename(tmp, os.path.join(blobs, digest.split(":", 1)[1]))
        layers.append({"mediaType": OCI_GZIP_LAYER, "digest": digest, "size": os.path.getsize(os.path.join(
            blobs, digest.split(":", 1)[1]))})
        diff_ids.append("sha256:" + hashing.hash.hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": iso_time(1577836800),
                         "config": {"Labels": {"dockhand.bench": tag}},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": dict(add_blob(config), mediaType=OCI_CONFIG), "layers": layers},
                          sort_keys=True).encode()
    descriptor = dict(add_blob(manifest), mediaType=OCI_MANIFEST,
                      annotations={"org.opencontainers.image.ref.name": tag})
    with open(os.path.join(path, "oci-layout"), "w", encoding="utf-8") as handle:
        json.dump({"imageLayoutVersion": "1.0.0"}, handle)
    with open(index_path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({"schemaVersion": 2, "mediaType": OCI_LAYOUT_INDEX, "manifests": [descriptor]}, handle)
    os.rename(index_path + ".tmp", index_path)
    return descriptor["digest"]


def oci_layout_digest(path):
    """The manifest digest of the one image an OCI layout's index.json names, or None."""
    try:
        with open(os.path.join(path, "index.json"), encoding="utf-8") as handle:
            return json.load(handle)["manifests"][0]["digest"]
    except (OSError, ValueError, KeyError, IndexError):
        return None
