#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A FAKE of a distribution v3 registry, for the benchmarks' untag case only.

distribution v3 is not packaged in Debian, so nothing here can run the real one; this fake stands in
for it. It is real HTTP/1.1 (keep-alive) on 127.0.0.1, one process, a bounded number of threads,
and implements exactly what the collection's registry_repo, skopeo and the floors use:

- GET /v2/ (the ping), GET /v2/_catalog;
- GET /v2/<name>/tags/list with n / last and a Link header to the next page;
- HEAD and GET of /v2/<name>/manifests/<tag or digest>, with Docker-Content-Digest;
- PUT of a manifest (its config and layers must be blobs already), to load fixtures;
- DELETE /v2/<name>/manifests/<tag>: the tag only goes (202; 404 MANIFEST_UNKNOWN when it is not
  there), as distribution v3's registry/handlers/manifests.go does with tagService.Untag;
- DELETE /v2/<name>/manifests/<digest>: the manifest goes, then every tag pointing at it (202), as v3
  does with tagService.Lookup, which reads the link of every tag in the repository;
- blob HEAD/GET, uploads (POST, PATCH, PUT ?digest=, DELETE) and cross-repository mounts;
- GET /v2/<name>/referrers/<digest> answers 404, as registries without the OCI 1.1 referrers API do
  (the collection then uses the referrers tag schema); the untag rows involve no referrers.

Storage is a folder laid out like distribution's filesystem driver in the one way that matters for
cost: one small link file per tag, so that a delete by digest reads every tag's link, as v3's does.
The absolute figures are this Python fake's, not v3's; the shape (a tag delete touches one file, a
digest delete all tags) is v3's. Not for anything but the benchmarks: no auth, no TLS, loopback only.

GET /_fake/stats answers counters of the requests served (JSON), so a benchmark can check which
delete path a client took.

    fake_v3.py --port PORT --storage DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

MAX_CONNECTIONS = 32
MAX_MANIFEST_BYTES = 4 << 20
MAX_BLOB_BYTES = 1 << 30
CHUNK = 1 << 20
MAX_BODY_CHUNKS = 1 << 20
DEFAULT_PAGE = 1000
MAX_PAGE = 10000

NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST = re.compile(r"^sha256:([a-f0-9]{64})$")
ROUTES = [
    ("tags", re.compile(r"^/v2/(?P<name>%s)/tags/list$" % NAME)),
    ("manifest", re.compile(r"^/v2/(?P<name>%s)/manifests/(?P<ref>[^/]+)$" % NAME)),
    ("upload", re.compile(r"^/v2/(?P<name>%s)/blobs/uploads/(?P<upload>[a-f0-9]*)$" % NAME)),
    ("blob", re.compile(r"^/v2/(?P<name>%s)/blobs/(?P<digest>[^/]+)$" % NAME)),
    ("referrers", re.compile(r"^/v2/(?P<name>%s)/referrers/(?P<digest>[^/]+)$" % NAME)),
]
DEFAULT_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


class Failure(Exception):
    """An error answer in the registry's JSON error format."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Storage:
    """The fake's folder: blobs/<hex>, uploads/<id>, repositories/<name>/{manifests,tags}/..."""

    def __init__(self, root):
        self.root = root
        for part in ("blobs", "uploads", "repositories"):
            os.makedirs(os.path.join(root, part), exist_ok=True)
        # Writes of one repository are serialised, as they would race on its files otherwise.
        self.write_lock = threading.Lock()

    def blob_path(self, digest):
        return os.path.join(self.root, "blobs", DIGEST.match(digest).group(1))

    def upload_path(self, upload):
        return os.path.join(self.root, "uploads", upload)

    def repo(self, name):
        return os.path.join(self.root, "repositories", name)

    def manifest_path(self, name, digest):
        return os.path.join(self.repo(name), "manifests", DIGEST.match(digest).group(1))

    def tag_path(self, name, tag):
        return os.path.join(self.repo(name), "tags", tag)

    def tags(self, name):
        try:
            return sorted(os.listdir(os.path.join(self.repo(name), "tags")))
        except FileNotFoundError:
            if os.path.isdir(self.repo(name)):
                return []
            raise Failure(404, "NAME_UNKNOWN", "repository name not known to registry") from None

    def resolve(self, name, reference):
        """(digest, body, media type) of a tag or digest; Failure 404 when unknown."""
        if DIGEST.match(reference):
            digest = reference
        elif TAG.match(reference):
            try:
                with open(self.tag_path(name, reference), encoding="ascii") as handle:
                    digest = handle.read().strip()
            except FileNotFoundError:
                raise Failure(404, "MANIFEST_UNKNOWN", "manifest unknown") from None
        else:
            raise Failure(400, "TAG_INVALID", "invalid tag or digest")
        path = self.manifest_path(name, digest)
        try:
            with open(path, "rb") as handle:
                body = handle.read()
            with open(path + ".type", encoding="utf-8") as handle:
                media_type = handle.read().strip()
        except FileNotFoundError:
            raise Failure(404, "MANIFEST_UNKNOWN", "manifest unknown") from None
        return digest, body, media_type

    def put_manifest(self, name, reference, body, media_type):
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if DIGEST.match(reference) and reference != digest:
            raise Failure(400, "DIGEST_INVALID", "manifest digest does not match the reference")
        if not DIGEST.match(reference) and not TAG.match(reference):
            raise Failure(400, "TAG_INVALID", "invalid tag")
        try:
            document = json.loads(body)
        except ValueError:
            raise Failure(400, "MANIFEST_INVALID", "manifest is not JSON") from None
        children = [document.get("config")] + list(document.get("layers") or [])
        for child in children:
            if isinstance(child, dict) and not os.path.isfile(self.blob_path_checked(child.get("digest", ""))):
                raise Failure(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown: %s" % child.get("digest"))
        for child in document.get("manifests") or []:
            if not os.path.isfile(self.manifest_path(name, child.get("digest", "sha256:" + "0" * 64))):
                raise Failure(400, "MANIFEST_BLOB_UNKNOWN", "manifest unknown: %s" % child.get("digest"))
        with self.write_lock:
            path = self.manifest_path(name, digest)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.makedirs(os.path.join(self.repo(name), "tags"), exist_ok=True)
            _write(path + ".type", (media_type or document.get("mediaType") or DEFAULT_MEDIA_TYPE).encode())
            _write(path, body)
            if not DIGEST.match(reference):
                _write(self.tag_path(name, reference), digest.encode())
        return digest

    def blob_path_checked(self, digest):
        if not DIGEST.match(digest or ""):
            raise Failure(400, "DIGEST_INVALID", "invalid digest %r" % digest)
        return self.blob_path(digest)

    def untag(self, name, tag):
        """v3's tag delete: that tag, nothing else."""
        with self.write_lock:
            try:
                os.unlink(self.tag_path(name, tag))
            except FileNotFoundError:
                raise Failure(404, "MANIFEST_UNKNOWN", "unknown tag=%s" % tag) from None

    def delete_manifest(self, name, digest):
        """v3's digest delete: the manifest, then every tag whose link (each one read) names it."""
        with self.write_lock:
            path = self.manifest_path(name, digest)
            try:
                os.unlink(path)
            except FileNotFoundError:
                raise Failure(404, "MANIFEST_UNKNOWN", "manifest unknown") from None
            os.unlink(path + ".type")
            tags_dir = os.path.join(self.repo(name), "tags")
            for tag in os.listdir(tags_dir):
                link = os.path.join(tags_dir, tag)
                try:
                    with open(link, encoding="ascii") as handle:
                        pointed = handle.read().strip()
                except FileNotFoundError:
                    continue
                if pointed == digest:
                    os.unlink(link)

    def repositories(self):
        found = []
        base = os.path.join(self.root, "repositories")
        for folder, subfolders, _files in os.walk(base):
            if "tags" in subfolders:
                found.append(os.path.relpath(folder, base))
                subfolders[:] = [s for s in subfolders if s not in ("tags", "manifests")]
        return sorted(found)


def _write(path, data):
    tmp = "%s.%s.tmp" % (path, uuid.uuid4().hex)
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dockhand-fake-v3"
    storage = None  # set by main()
    stats = Counter()
    stats_lock = threading.Lock()

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # quiet, like the benchmark registries' access log

    # ---------------------------------------------------------------- plumbing
    def _count(self, what):
        with self.stats_lock:
            self.stats[what] += 1

    def _send(self, status, body=b"", headers=None, length=None):
        """One answer; ``length`` is the Content-Length of a HEAD answer's body, which is not sent."""
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, document, headers=None):
        self._send(status, json.dumps(document).encode(), dict(headers or {}, **{"Content-Type": "application/json"}))

    def _fail(self, failure):
        self._json(failure.status, {"errors": [{"code": failure.code, "message": failure.message}]})

    def _body_chunks(self, limit):
        """The request body as chunks (Content-Length or chunked), at most limit bytes."""
        length = self.headers.get("Content-Length")
        if length is not None:
            remaining = int(length)
            if remaining > limit:
                raise Failure(413, "SIZE_INVALID", "body too large")
            while remaining > 0:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    raise Failure(400, "BLOB_UPLOAD_INVALID", "body ended early")
                remaining -= len(data)
                yield data
            self.body_pending = False
        elif "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            total = 0
            for _chunk in range(MAX_BODY_CHUNKS):
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    self.body_pending = False
                    return
                total += size
                if total > limit:
                    raise Failure(413, "SIZE_INVALID", "body too large")
                yield self.rfile.read(size)
                self.rfile.readline()
            raise Failure(413, "SIZE_INVALID", "too many chunks")

    def _route(self):
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if parts.path in ("/v2", "/v2/"):
            return "ping", {}, query
        if parts.path == "/v2/_catalog":
            return "catalog", {}, query
        if parts.path == "/_fake/stats":
            return "stats", {}, query
        for route, pattern in ROUTES:
            match = pattern.match(parts.path)
            if match:
                return route, match.groupdict(), query
        return None, {}, query

    def _dispatch(self, method):
        route, params, query = self._route()
        self._count("%s %s" % (method, route))
        # Cleared once the handler reads the body: a failure before that ends the connection,
        # since the unread body would be taken for the next request.
        self.body_pending = bool(self.headers.get("Content-Length", "0") != "0" or self.headers.get("Transfer-Encoding"))
        try:
            handler = getattr(self, "_%s_%s" % (method.lower(), route), None) if route else None
            if handler is None:
                raise Failure(404 if route is None else 405, "UNSUPPORTED", "not supported by the fake")
            handler(params, query)
        except (Failure, ValueError) as failure:
            if not isinstance(failure, Failure):
                failure = Failure(400, "UNSUPPORTED", "bad request: %s" % failure)
            if self.body_pending:
                self.close_connection = True
            self._fail(failure)

    def do_GET(self):  # pylint: disable=invalid-name
        self._dispatch("GET")

    def do_HEAD(self):  # pylint: disable=invalid-name
        self._dispatch("HEAD")

    def do_PUT(self):  # pylint: disable=invalid-name
        self._dispatch("PUT")

    def do_POST(self):  # pylint: disable=invalid-name
        self._dispatch("POST")

    def do_PATCH(self):  # pylint: disable=invalid-name
        self._dispatch("PATCH")

    def do_DELETE(self):  # pylint: disable=invalid-name
        self._dispatch("DELETE")

    # ---------------------------------------------------------------- routes
    def _get_ping(self, _params, _query):
        self._json(200, {})

    def _get_stats(self, _params, _query):
        with self.stats_lock:
            self._json(200, dict(self.stats))

    def _get_catalog(self, _params, query):
        names = self.storage.repositories()
        self._page(names, query, "/v2/_catalog", "repositories", {})

    def _get_tags(self, params, query):
        name = params["name"]
        self._page(self.storage.tags(name), query, "/v2/%s/tags/list" % name, "tags", {"name": name})

    def _page(self, items, query, path, key, document):
        try:
            size = int(query.get("n", DEFAULT_PAGE if "last" in query else len(items) or 1))
        except ValueError:
            raise Failure(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested") from None
        if size < 0 or size > MAX_PAGE:
            raise Failure(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
        last = query.get("last")
        start = 0
        if last:
            start = next((i for i, item in enumerate(items) if item > last), len(items))
        page = items[start:start + size]
        headers = {}
        if page and start + size < len(items):
            headers["Link"] = '<%s?n=%d&last=%s>; rel="next"' % (path, size, quote(page[-1], safe=""))
        self._json(200, dict(document, **{key: page}), headers)

    def _manifest(self, params, head):
        digest, body, media_type = self.storage.resolve(params["name"], params["ref"])
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest, "Etag": '"%s"' % digest}
        self._send(200, b"" if head else body, headers, length=len(body) if head else None)

    def _head_manifest(self, params, _query):
        self._manifest(params, True)

    def _get_manifest(self, params, _query):
        self._manifest(params, False)

    def _put_manifest(self, params, _query):
        body = b"".join(self._body_chunks(MAX_MANIFEST_BYTES))
        digest = self.storage.put_manifest(params["name"], params["ref"], body, self.headers.get("Content-Type"))
        self._send(201, b"", {"Location": "/v2/%s/manifests/%s" % (params["name"], digest),
                              "Docker-Content-Digest": digest})

    def _delete_manifest(self, params, _query):
        reference = params["ref"]
        if DIGEST.match(reference):
            self._count("DELETE manifest by digest")
            self.storage.delete_manifest(params["name"], reference)
        elif TAG.match(reference):
            self._count("DELETE manifest by tag")
            self.storage.untag(params["name"], reference)
        else:
            raise Failure(400, "TAG_INVALID", "invalid tag or digest")
        self._send(202)

    def _blob(self, params, head):
        path = self.storage.blob_path_checked(params["digest"])
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            raise Failure(404, "BLOB_UNKNOWN", "blob unknown to registry") from None
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": params["digest"]}
        if head:
            self._send(200, b"", headers, length=size)
            return
        self.send_response(200)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(path, "rb") as handle:
            shutil.copyfileobj(handle, self.wfile, CHUNK)

    def _head_blob(self, params, _query):
        self._blob(params, True)

    def _get_blob(self, params, _query):
        self._blob(params, False)

    def _upload_location(self, name, upload):
        return "/v2/%s/blobs/uploads/%s" % (name, upload)

    def _post_upload(self, params, query):
        name = params["name"]
        mount = query.get("mount")
        if mount and os.path.isfile(self.storage.blob_path_checked(mount)):
            self._send(201, b"", {"Location": "/v2/%s/blobs/%s" % (name, mount), "Docker-Content-Digest": mount})
            return
        upload = uuid.uuid4().hex
        with open(self.storage.upload_path(upload), "wb") as handle:
            for data in self._body_chunks(MAX_BLOB_BYTES):
                handle.write(data)
        if query.get("digest"):
            self._finish_upload(name, upload, query["digest"])
            return
        self._send(202, b"", {"Location": self._upload_location(name, upload), "Range": "0-0",
                              "Docker-Upload-UUID": upload})

    def _existing_upload(self, params):
        path = self.storage.upload_path(params["upload"]) if params["upload"] else ""
        if not path or not os.path.isfile(path):
            raise Failure(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        return path

    def _patch_upload(self, params, _query):
        path = self._existing_upload(params)
        with open(path, "ab") as handle:
            for data in self._body_chunks(MAX_BLOB_BYTES):
                handle.write(data)
            size = handle.tell()
        self._send(202, b"", {"Location": self._upload_location(params["name"], params["upload"]),
                              "Range": "0-%d" % max(size - 1, 0), "Docker-Upload-UUID": params["upload"]})

    def _put_upload(self, params, query):
        path = self._existing_upload(params)
        with open(path, "ab") as handle:
            for data in self._body_chunks(MAX_BLOB_BYTES):
                handle.write(data)
        self._finish_upload(params["name"], params["upload"], query.get("digest", ""))

    def _finish_upload(self, name, upload, digest):
        target = self.storage.blob_path_checked(digest)
        path = self.storage.upload_path(upload)
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            for data in iter(lambda: handle.read(CHUNK), b""):
                hasher.update(data)
        if "sha256:" + hasher.hexdigest() != digest:
            os.unlink(path)
            raise Failure(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        os.replace(path, target)
        self._send(201, b"", {"Location": "/v2/%s/blobs/%s" % (name, digest), "Docker-Content-Digest": digest})

    def _delete_upload(self, params, _query):
        os.unlink(self._existing_upload(params))
        self._send(204)

    def _get_referrers(self, _params, _query):
        raise Failure(404, "UNSUPPORTED", "no referrers API (as registries before OCI 1.1)")


class BoundedServer(ThreadingHTTPServer):
    """One thread per connection, at most MAX_CONNECTIONS at a time (the accept loop waits for a slot)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        self.slots.acquire()  # pylint: disable=consider-using-with
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)  # a client hanging up is no error of the fake's

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args()
    Handler.storage = Storage(os.path.abspath(args.storage))
    server = BoundedServer(("127.0.0.1", args.port), Handler)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
