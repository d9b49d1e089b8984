# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory registry with distribution 2.x semantics, for the unit tests of the copy and delete logic.

It behaves like the distribution registry where the logic depends on it: a DELETE by digest
removes every tag on that digest, a manifest PUT is refused while its blobs (or an index's
children) are missing from the repository, and deletes can be disabled (405 UNSUPPORTED).
The integration targets exercise the same code against real registries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_INDEX,
    Manifest,
    ManifestHead,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (
    RegistryDeleteDisabled,
    RegistryError,
    RegistryInterrupted,
    RegistryNotFound,
)
from ansible_collections.dockhand.registry.plugins.module_utils.stop_request import StopRequest


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _PlainNotFound:
    """The router's plain-text 404 of distribution 2.8 (no referrers route), as the client returns it."""

    status_code = 404
    content = b"404 page not found\n"
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    attempts = 1


class FakeRegistry:
    """One registry; ``calls`` records every operation as ``(name, repository, argument)``."""

    def __init__(self, host="127.0.0.1:5000", deletes_enabled=True):
        self.host = host
        self.base_url = "http://" + host
        self.deletes_enabled = deletes_enabled
        self.blobs = {}
        self.repos = {}
        self.calls = []
        self.fail = {}
        self.chunked_blobs = False
        # Digests whose next DELETE behaves like distribution 2.8 racing a PUT: the manifest
        # goes, its tags stay (dangling), and the retried answer is an unclear 404.
        self.half_deletes = set()
        self.stop = StopRequest()

    # helpers for tests

    def _repo(self, repository, create=False):
        if repository not in self.repos:
            if not create:
                raise RegistryNotFound("cannot reach %s on registry %s: repository not found" % (repository, self.host),
                                       404, "NAME_UNKNOWN")
            self.repos[repository] = dict(tags={}, manifests={}, blobs=set())
        return self.repos[repository]

    def _maybe_fail(self, name, repository, argument):
        self.calls.append((name, repository, argument))
        check = self.fail.get(name)
        if check is not None and check(repository, argument):
            raise RegistryError("injected failure of %s %s %s" % (name, repository, argument), 500)

    def add_blob(self, repository, data):
        digest = sha256(data)
        self.blobs[digest] = data
        self._repo(repository, create=True)["blobs"].add(digest)
        return dict(mediaType="application/octet-stream", digest=digest, size=len(data))

    def add_image(self, repository, tags, created="2024-01-01T00:00:00Z", layers=(b"layer",), marker=""):
        config = json.dumps(dict(architecture="amd64", os="linux", created=created, marker=marker),
                            sort_keys=True).encode()
        config_descriptor = self.add_blob(repository, config)
        config_descriptor["mediaType"] = DOCKER_CONFIG
        layer_descriptors = [self.add_blob(repository, layer) for layer in layers]
        body = json.dumps(dict(schemaVersion=2, mediaType=DOCKER_MANIFEST, config=config_descriptor,
                               layers=layer_descriptors), sort_keys=True).encode()
        digest = sha256(body)
        repo = self._repo(repository, create=True)
        repo["manifests"][digest] = (body, DOCKER_MANIFEST)
        for tag in tags:
            repo["tags"][tag] = digest
        return digest

    def add_index(self, repository, tags, child_digests):
        repo = self._repo(repository)
        manifests = []
        for digest in child_digests:
            body, media_type = repo["manifests"][digest]
            manifests.append(dict(mediaType=media_type, digest=digest, size=len(body),
                                  platform=dict(os="linux", architecture="amd64")))
        body = json.dumps(dict(schemaVersion=2, mediaType=OCI_INDEX, manifests=manifests), sort_keys=True).encode()
        digest = sha256(body)
        repo["manifests"][digest] = (body, OCI_INDEX)
        for tag in tags:
            repo["tags"][tag] = digest
        return digest

    def tag_digest(self, repository, tag):
        return self.repos.get(repository, {}).get("tags", {}).get(tag)

    # the RegistryClient contract

    def list_tags(self, repository):
        self._maybe_fail("list_tags", repository, None)
        return list(self._repo(repository)["tags"])

    def _resolve(self, repository, reference):
        repo = self.repos.get(repository)
        if repo is None:
            return None
        digest = reference if reference.startswith("sha256:") else repo["tags"].get(reference)
        if digest is None or digest not in repo["manifests"]:
            return None
        return digest

    def head_manifest(self, repository, reference):
        self._maybe_fail("head_manifest", repository, reference)
        digest = self._resolve(repository, reference)
        if digest is None:
            return None
        body, media_type = self.repos[repository]["manifests"][digest]
        return ManifestHead(digest, media_type, len(body))

    def get_manifest(self, repository, reference):
        self._maybe_fail("get_manifest", repository, reference)
        digest = self._resolve(repository, reference)
        if digest is None:
            return None
        body, media_type = self.repos[repository]["manifests"][digest]
        return Manifest(digest, media_type, body)

    def put_manifest(self, repository, reference, body, media_type):
        self._maybe_fail("put_manifest", repository, reference)
        repo = self._repo(repository, create=True)
        manifest = Manifest(sha256(body), media_type, body)
        for descriptor in manifest.blob_descriptors:
            if descriptor["digest"] not in repo["blobs"]:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN %s" % descriptor["digest"], 400)
        for child in manifest.child_descriptors:
            if child["digest"] not in repo["manifests"]:
                raise RegistryError("MANIFEST_UNKNOWN child %s" % child["digest"], 400)
        repo["manifests"][manifest.digest] = (body, media_type)
        if not reference.startswith("sha256:"):
            repo["tags"][reference] = manifest.digest
        return manifest.digest

    def delete_manifest(self, repository, digest):
        self._maybe_fail("delete_manifest", repository, digest)
        if not self.deletes_enabled:
            raise RegistryDeleteDisabled("cannot delete manifest %s of %s: deletes disabled" % (digest, repository),
                                         405, "UNSUPPORTED")
        repo = self.repos.get(repository)
        if repo is None or digest not in repo["manifests"]:
            raise RegistryNotFound("manifest unknown", 404, "MANIFEST_UNKNOWN")
        del repo["manifests"][digest]
        if digest in self.half_deletes:
            self.half_deletes.discard(digest)
            return False
        for tag in [tag for tag, value in repo["tags"].items() if value == digest]:
            del repo["tags"][tag]
        return True

    def repository_request(self, method, repository, parts, what, query=None, ok=(200,)):
        """distribution 2.8's answers to tag DELETE (400 DIGEST_INVALID, 405 with deletes off) and referrers (404)."""
        self._maybe_fail("repository_request", repository, (method,) + tuple(parts))
        if method == "DELETE" and parts[0] == "manifests" and ":" not in parts[1]:
            if not self.deletes_enabled:
                raise RegistryDeleteDisabled("cannot %s: deletes disabled" % what, 405, "UNSUPPORTED")
            raise RegistryError("cannot %s: 400 DIGEST_INVALID" % what, 400, "DIGEST_INVALID")
        if 404 in ok:
            return _PlainNotFound()
        raise RegistryNotFound("cannot %s: 404 page not found" % what, 404)

    def dangling_tags(self, repository):
        """Tags listed whose digest has no manifest (what a half delete leaves)."""
        repo = self.repos.get(repository, {})
        return sorted(tag for tag, digest in repo.get("tags", {}).items() if digest not in repo["manifests"])

    def blob_exists(self, repository, digest):
        self._maybe_fail("blob_exists", repository, digest)
        return digest in self.repos.get(repository, {}).get("blobs", ())

    def mount_blob(self, repository, digest, source_repository):
        self._maybe_fail("mount_blob", repository, digest)
        if digest in self.repos.get(source_repository, {}).get("blobs", ()):
            self._repo(repository, create=True)["blobs"].add(digest)
            return True
        return False

    def get_blob_json(self, repository, digest):
        self._maybe_fail("get_blob_json", repository, digest)
        return json.loads(self.blobs[digest].decode())

    @contextlib.contextmanager
    def open_blob(self, repository, digest):
        self._maybe_fail("open_blob", repository, digest)
        if not self.blob_exists(repository, digest):
            raise RegistryNotFound("blob unknown", 404, "BLOB_UNKNOWN")
        data = self.blobs[digest]
        yield iter([data[:3], data[3:]]), None if self.chunked_blobs else len(data)

    def upload_blob(self, repository, digest, chunks, size):
        self._maybe_fail("upload_blob", repository, digest)
        data = b"".join(chunks)
        assert len(data) == size and sha256(data) == digest
        self.blobs[digest] = data
        self._repo(repository, create=True)["blobs"].add(digest)

    def map_bounded(self, func, items, stoppable=True):
        results = []
        for item in items:
            if stoppable and self.stop.requested:
                raise RegistryInterrupted("stopped by SIGTERM")
            results.append(func(item))
        return results
