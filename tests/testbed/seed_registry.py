#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fill a registry with small synthetic images over the HTTP API, fast.

Used by the integration targets and the benchmarks to create fixtures that
would take minutes through an engine: thousands of repositories or tags,
distinct images with chosen creation times, multi-platform indexes.

Examples:
  seed_registry.py --registry 127.0.0.1:5000 --repository app --tags a b c --same-image
  seed_registry.py --registry 127.0.0.1:5000 --repository app --tag-count 1100 --tag-prefix t
  seed_registry.py --registry 127.0.0.1:5000 --repository-prefix bulk/r --repositories 1100
  seed_registry.py --registry 127.0.0.1:5000 --repository multi --tags v1 --index
Prints one JSON object: {"repositories": {...name: {tag: digest}}}.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REQUEST_TIMEOUT = 30


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(name: str, content: bytes) -> bytes:
    """An uncompressed tar with one file: a real layer, so engines can pull it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class Pusher:
    """A tiny registry client: just what seeding needs (basic and bearer auth)."""

    def __init__(self, registry, username=None, password=None, ca=None, scheme=None):
        self.base = registry if "://" in registry else "%s://%s" % (scheme or "http", registry)
        self.auth = (username, password) if username else None
        # Per request, because requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify = ca or True
        self._local = threading.local()
        self._tokens = {}
        self._lock = threading.Lock()

    @property
    def session(self):
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _token(self, challenge, scope):
        with self._lock:
            if scope in self._tokens:
                return self._tokens[scope]
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm")
        params["scope"] = scope
        answer = self.session.get(realm, params=params, auth=self.auth, timeout=REQUEST_TIMEOUT,
                                  verify=self.verify)
        answer.raise_for_status()
        body = answer.json()
        token = body.get("token") or body.get("access_token")
        with self._lock:
            self._tokens[scope] = token
        return token

    def request(self, method, path, scope, **kwargs):
        url = path if "://" in path else self.base + path
        headers = kwargs.pop("headers", {})
        token = self._tokens.get(scope)
        for _attempt in range(2):
            if token:
                headers["Authorization"] = "Bearer " + token
                answer = self.session.request(method, url, headers=headers, timeout=REQUEST_TIMEOUT,
                                              verify=self.verify, **kwargs)
            else:
                answer = self.session.request(method, url, headers=headers, auth=self.auth,
                                              timeout=REQUEST_TIMEOUT, verify=self.verify, **kwargs)
            challenge = answer.headers.get("WWW-Authenticate", "")
            if answer.status_code == 401 and challenge.lower().startswith("bearer"):
                token = self._token(challenge, scope)
                continue
            break
        if answer.status_code >= 400:
            raise SystemExit("%s %s -> %s %s" % (method, url, answer.status_code, answer.text[:300]))
        return answer

    def push_blob(self, repository, data: bytes) -> str:
        digest = sha256_digest(data)
        scope = "repository:%s:pull,push" % repository
        head = self.session.head(self.base + "/v2/%s/blobs/%s" % (repository, digest),
                                 headers=self._auth_header(scope), auth=None if self._tokens.get(scope) else self.auth,
                                 timeout=REQUEST_TIMEOUT, verify=self.verify)
        if head.status_code == 200:
            return digest
        started = self.request("POST", "/v2/%s/blobs/uploads/" % repository, scope)
        location = started.headers["Location"]
        if "://" not in location:
            location = self.base + location
        separator = "&" if "?" in location else "?"
        self.request("PUT", location + separator + "digest=" + digest, scope, data=data,
                     headers={"Content-Type": "application/octet-stream"})
        return digest

    def mount_blob(self, repository, digest, source_repository):
        """Cross-repository mount; fails unless the registry really mounted (201)."""
        answer = self.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (repository, digest, source_repository),
                              "repository:%s:pull,push" % repository)
        if answer.status_code != 201:
            raise SystemExit("mount of %s into %s failed: HTTP %s" % (digest, repository, answer.status_code))

    def _auth_header(self, scope):
        token = self._tokens.get(scope)
        return {"Authorization": "Bearer " + token} if token else {}

    def push_manifest(self, repository, reference, body: bytes, media_type: str) -> str:
        scope = "repository:%s:pull,push" % repository
        self.request("PUT", "/v2/%s/manifests/%s" % (repository, reference), scope, data=body,
                     headers={"Content-Type": media_type})
        return sha256_digest(body)


def build_image(pusher, repository, seed, created, architecture="amd64", oci=False):
    """Push one small distinct image; return (manifest bytes, media type)."""
    layer = layer_tar("seed.txt", ("%s\n" % seed).encode())
    layer_digest = pusher.push_blob(repository, layer)
    config = json.dumps({
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": {"Labels": {"io.dockhand.seed": str(seed)}},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]},
        "history": [{"created": created, "created_by": "seed_registry.py"}],
    }, sort_keys=True).encode()
    config_digest = pusher.push_blob(repository, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": len(config),
                   "digest": config_digest},
        "layers": [{"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "size": len(layer),
                    "digest": layer_digest}],
    }, indent=3).encode()
    return manifest, (OCI_MANIFEST if oci else DOCKER_MANIFEST)


def push_tagged(pusher, repository, tag, seed, created, index):
    if not index:
        body, media_type = build_image(pusher, repository, seed, created)
        return pusher.push_manifest(repository, tag, body, media_type)
    entries = []
    for architecture in ("amd64", "arm64"):
        body, media_type = build_image(pusher, repository, "%s-%s" % (seed, architecture), created,
                                       architecture=architecture, oci=True)
        digest = pusher.push_manifest(repository, sha256_digest(body), body, media_type)
        entries.append({"mediaType": media_type, "size": len(body), "digest": digest,
                        "platform": {"architecture": architecture, "os": "linux"}})
    index_body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return pusher.push_manifest(repository, tag, index_body, OCI_INDEX)


def timestamp(start, step, position):
    moment = start + datetime.timedelta(seconds=step * position)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", required=True, help="host:port or URL")
    parser.add_argument("--username")
    parser.add_argument("--password", default=os.environ.get("SEED_REGISTRY_PASSWORD"),
                        help="or SEED_REGISTRY_PASSWORD, which keeps it off the command line")
    parser.add_argument("--ca", help="CA bundle for https registries")
    parser.add_argument("--repository", help="one repository to fill")
    parser.add_argument("--tags", nargs="*", default=[], help="tags to create in --repository")
    parser.add_argument("--tag-count", type=int, default=0, help="create this many tags PREFIX0..N-1")
    parser.add_argument("--tag-prefix", default="t")
    parser.add_argument("--same-image", action="store_true", help="every tag points at one image")
    parser.add_argument("--index", action="store_true", help="push multi-platform OCI indexes")
    parser.add_argument("--repository-prefix", help="create --repositories repositories PREFIX0..N-1")
    parser.add_argument("--repositories", type=int, default=0)
    parser.add_argument("--created-start", default="2020-01-01T00:00:00Z")
    parser.add_argument("--created-step", type=int, default=3600, help="seconds between tag creation times")
    parser.add_argument("--seed", default=os.urandom(4).hex(), help="makes images distinct between runs")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)

    pusher = Pusher(args.registry, args.username, args.password, args.ca)
    start = datetime.datetime.strptime(args.created_start, "%Y-%m-%dT%H:%M:%SZ")
    jobs = []
    if args.repository:
        tags = list(args.tags) + ["%s%d" % (args.tag_prefix, n) for n in range(args.tag_count)]
        if args.same_image and tags:
            first = push_tagged(pusher, args.repository, tags[0], args.seed, timestamp(start, 0, 0), args.index)
            jobs.append((args.repository, tags[0], first))
            jobs.extend((args.repository, tag, None) for tag in tags[1:])
        else:
            for position, tag in enumerate(tags):
                jobs.append((args.repository, tag, position))
    if args.repository_prefix:
        for n in range(args.repositories):
            jobs.append(("%s%d" % (args.repository_prefix, n), "latest", n))

    results = {}
    lock = threading.Lock()
    first_manifest = None
    if args.same_image and args.repository and jobs:
        # Read once, before the pool: distribution rewrites a tag's revision link
        # non-atomically, so concurrent reads during re-tagging can fail.
        answer = pusher.request("GET", "/v2/%s/manifests/%s" % (args.repository, jobs[0][1]),
                                "repository:%s:pull,push" % args.repository,
                                headers={"Accept": ", ".join([DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST])})
        first_manifest = (answer.content, answer.headers["Content-Type"])

    def run(job):
        repository, tag, position = job
        if isinstance(position, str):
            digest = position
        elif position is None:
            # --same-image: re-tag the first tag's manifest with its exact bytes.
            digest = pusher.push_manifest(repository, tag, *first_manifest)
        else:
            digest = push_tagged(pusher, repository, tag, "%s-%s-%s" % (args.seed, repository, tag),
                                 timestamp(start, args.created_step, position), args.index)
        with lock:
            results.setdefault(repository, {})[tag] = digest

    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        list(pool.map(run, jobs))
    json.dump({"repositories": results}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
