# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-memory registries that answer ``repository_request`` (the referrers API and tag delete).

FakeDistribution2 answers as distribution 2.8 does (registry/handlers/manifests.go of the 2.x
line): no referrers route (a plain-text 404), and a DELETE by tag reaches the digest path with an
empty digest: 405 UNSUPPORTED when deletes are off, else 400 DIGEST_INVALID, nothing changed.

FakeDistribution3 answers as distribution v3's DeleteManifest does, in its order: read-only (bare
405, no DELETE route), pull-through cache (405 UNSUPPORTED), deletes off (405 UNSUPPORTED), then a
tag is untagged (202; an unknown tag is 404 MANIFEST_UNKNOWN) and a digest is deleted with all its
tags. With ``referrers_api`` it also serves the OCI 1.1 referrers API, which no distribution
release has (zot, Harbor and others do): the descriptors of the repository's manifests whose
subject is the digest, artifactType per the spec, the artifactType filter with
OCI-Filters-Applied, and Link pages of ``page_size``.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from ansible_collections.dockhand.registry.plugins.module_utils.oci import OCI_INDEX, OCI_MANIFEST
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import error_from_response
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake import FakeRegistry, sha256

OCI_EMPTY = "application/vnd.oci.empty.v1+json"


class FakeResponse:
    """The parts of an HttpResponse that callers and error_from_response read."""

    def __init__(self, status_code, content=b"", headers=None, method="GET", reason=""):
        self.status_code = status_code
        self.content = content
        self.headers = dict(headers or {})
        self.method = method
        self.reason = reason
        self.attempts = 1


def error_response(status, code, method, message=""):
    body = json.dumps({"errors": [{"code": code, "message": message or code.lower(), "detail": None}]}).encode()
    return FakeResponse(status, body, {"Content-Type": "application/json; charset=utf-8"}, method)


def plain_404(method):
    return FakeResponse(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"}, method,
                        "Not Found")


class _RequestingFake(FakeRegistry):
    """``repository_request`` raising exactly as the real client does for answers not in ``ok``."""

    def repository_request(self, method, repository, parts, what, query=None, ok=(200,)):
        parts = tuple(parts)
        self._maybe_fail("repository_request", repository, (method,) + parts)
        response = self.answer(method, repository, parts, list(query or []))
        if response.status_code in ok:
            return response
        raise error_from_response(response, what, self.host, delete=method == "DELETE")

    def delete_manifest(self, repository, digest):
        self._maybe_fail("delete_manifest", repository, digest)
        response = self.answer("DELETE", repository, ("manifests", digest), [])
        if response.status_code != 202:
            raise error_from_response(response, "delete manifest %s of %s" % (digest, repository), self.host,
                                      delete=True)
        return True

    def answer(self, method, repository, parts, query):
        raise NotImplementedError

    def add_oci_blob(self, repository, data, media_type):
        descriptor = self.add_blob(repository, data)
        descriptor["mediaType"] = media_type
        return descriptor

    def add_referrer(self, repository, subject_digest, artifact_type=None, annotations=None, tag=None,
                     config_media_type=OCI_EMPTY, payload=b"payload", subject_field=True):
        """Store an OCI artifact manifest whose subject is ``subject_digest``; returns (digest, body)."""
        repo = self._repo(repository)
        subject_body, subject_type = repo["manifests"][subject_digest]
        config = self.add_oci_blob(repository, b"{}", config_media_type)
        layer = self.add_oci_blob(repository, payload, "application/octet-stream")
        document = dict(schemaVersion=2, mediaType=OCI_MANIFEST, config=config, layers=[layer])
        if artifact_type:
            document["artifactType"] = artifact_type
        if annotations:
            document["annotations"] = annotations
        if subject_field:
            document["subject"] = dict(mediaType=subject_type, digest=subject_digest, size=len(subject_body))
        body = json.dumps(document, sort_keys=True).encode()
        digest = self.put_manifest(repository, tag or sha256(body), body, OCI_MANIFEST)
        return digest, body


class FakeDistribution2(_RequestingFake):
    """distribution 2.8's answers to the requests without a client method of their own."""

    def answer(self, method, repository, parts, query):
        if parts[0] == "manifests" and method == "DELETE":
            reference = parts[1]
            if not self.deletes_enabled:
                return error_response(405, "UNSUPPORTED", method, "The operation is unsupported.")
            if ":" not in reference:
                # A tag reaches manifests.Delete with an empty digest, which fails validation.
                return error_response(400, "DIGEST_INVALID", method, "provided digest did not match uploaded content")
            return self._delete_digest(repository, reference, method)
        return plain_404(method)

    def _delete_digest(self, repository, digest, method):
        repo = self.repos.get(repository)
        if repo is None or digest not in repo["manifests"]:
            return error_response(404, "MANIFEST_UNKNOWN", method)
        del repo["manifests"][digest]
        for tag in [tag for tag, value in repo["tags"].items() if value == digest]:
            del repo["tags"][tag]
        return FakeResponse(202, b"", {}, method)


class FakeDistribution3(FakeDistribution2):
    """distribution v3's tag delete, plus (optionally) the OCI 1.1 referrers API."""

    def __init__(self, host="127.0.0.1:5000", deletes_enabled=True, read_only=False, cache=False,
                 referrers_api=False, filters=True, page_size=None, tag_delete_removes_manifest=False):
        super().__init__(host=host, deletes_enabled=deletes_enabled)
        self.read_only = read_only
        self.cache = cache
        self.referrers_api = referrers_api
        self.filters = filters
        self.page_size = page_size
        # A registry that breaks the spec: a tag DELETE deletes the manifest with every tag on it.
        self.tag_delete_removes_manifest = tag_delete_removes_manifest
        self.referrers_answer = None

    def answer(self, method, repository, parts, query):
        if parts[0] == "referrers" and method == "GET":
            if not self.referrers_api:
                return plain_404(method)
            return self._referrers(repository, parts[1], dict(query))
        if parts[0] == "manifests" and method == "DELETE":
            if self.read_only:
                return FakeResponse(405, b"", {}, method, "Method Not Allowed")
            if self.cache or not self.deletes_enabled:
                return error_response(405, "UNSUPPORTED", method, "The operation is unsupported.")
            reference = parts[1]
            if ":" in reference:
                return self._delete_digest(repository, reference, method)
            repo = self.repos.get(repository)
            if repo is None or reference not in repo["tags"]:
                return error_response(404, "MANIFEST_UNKNOWN", method, "manifest unknown")
            if self.tag_delete_removes_manifest:
                return self._delete_digest(repository, repo["tags"][reference], method)
            del repo["tags"][reference]
            return FakeResponse(202, b"", {}, method)
        return plain_404(method)

    def _referrers(self, repository, digest, query):
        if self.referrers_answer is not None:
            return self.referrers_answer
        if ":" not in digest:
            return error_response(400, "DIGEST_INVALID", "GET")
        if repository not in self.repos:
            return error_response(404, "NAME_UNKNOWN", "GET", "repository name not known to registry")
        repo = self._repo(repository)
        descriptors = []
        for manifest_digest, (body, media_type) in sorted(repo["manifests"].items()):
            data = json.loads(body)
            if (data.get("subject") or {}).get("digest") != digest:
                continue
            descriptor = dict(mediaType=media_type, digest=manifest_digest, size=len(body))
            artifact_type = data.get("artifactType") or (
                None if "manifests" in data else (data.get("config") or {}).get("mediaType"))
            if artifact_type:
                descriptor["artifactType"] = artifact_type
            if data.get("annotations"):
                descriptor["annotations"] = data["annotations"]
            descriptors.append(descriptor)
        headers = {"Content-Type": OCI_INDEX}
        wanted = query.get("artifactType")
        if wanted and self.filters:
            descriptors = [d for d in descriptors if d.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        start = int(query.get("offset", 0))
        if self.page_size:
            page = descriptors[start:start + self.page_size]
            if start + self.page_size < len(descriptors):
                next_query = dict(query, offset=start + self.page_size)
                headers["Link"] = '</v2/%s/referrers/%s?%s>; rel="next"' % (repository, digest, urlencode(next_query))
        else:
            page = descriptors
        body = json.dumps(dict(schemaVersion=2, mediaType=OCI_INDEX, manifests=page)).encode()
        return FakeResponse(200, body, headers, "GET")
