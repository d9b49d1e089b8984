# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Registry HTTP API v2 calls the registry_* modules make, on a registry_transport.RegistryTransport.

Contract (other modules code against exactly these)::

    class RegistryClient:
        RegistryClient(settings: registry_options.RegistrySettings)
        @classmethod from_params(cls, params, prefix="")   # prefix lets a module build a second client from source_* options
        host (str, e.g. 127.0.0.1:5000), base_url, timeout, concurrency
        catalog(page_size=None) -> list[str]      # follows Link, shrinks page on PAGINATION_NUMBER_INVALID
        list_tags(repository) -> list[str]        # raises RegistryNotFound for unknown repo; [] if no tags
        head_manifest(repository, reference) -> oci.ManifestHead | None
        get_manifest(repository, reference) -> oci.Manifest | None   # digest verified (sha256 of raw body)
        put_manifest(repository, reference, body: bytes, media_type) -> str digest
        delete_manifest(repository, digest) -> bool
        repository_request(method, repository, parts, what, query=None, ok=(200,)) -> HttpResponse   # referrers API, tag delete
        blob_exists(repository, digest) -> bool
        mount_blob(repository, digest, source_repository) -> bool   # False if the registry opened an upload instead (cancel that upload)
        get_blob_json(repository, digest) -> dict                   # small JSON blobs (image config)
        open_blob(repository, digest)  -> context manager yielding (iterator of bytes chunks, size)   # streamed
        upload_blob(repository, digest, chunks_iterable, size) -> None   # streamed, never whole in memory
        map_bounded(func, items) -> list          # runs func over items on at most `concurrency` threads sharing the keep-alive pool;
                                                  #   preserves order; re-raises the first error

Every method raises a registry_errors.RegistryError (one readable line) on failure.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote, urlencode, urljoin

from ansible_collections.dockhand.registry.plugins.module_utils.errors import one_line
from ansible_collections.dockhand.registry.plugins.module_utils.http_body import (
    BodyDeadline,
    BodyTooLarge,
    read_body,
)
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ImageReferenceError,
    validate_digest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestHead,
    compute_digest,
    digest_hasher,
    is_digest,
    media_type_of,
    quoted,
    sha256_digest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (
    RegistryConnectionError,
    RegistryError,
    RegistryInterrupted,
    parse_error_body,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_options import RegistrySettings
from ansible_collections.dockhand.registry.plugins.module_utils.registry_transport import (
    CONNECTION_ERRORS,
    DEFAULT_PAGE_SIZE,
    HttpResponse,
    RegistryTransport,
    SizedStream,
    set_query,
)
from ansible_collections.dockhand.registry.plugins.module_utils.stop_request import StopRequest
from ansible_collections.dockhand.registry.plugins.module_utils.thread_pool import map_bounded
from ansible_collections.dockhand.registry.plugins.module_utils.write_gate import (
    DELETE,
    PUT,
    RepositoryGates,
)

MAX_JSON_BLOB_BYTES = 16 * 1024 * 1024
BLOB_CHUNK_SIZE = 1024 * 1024


class RegistryClient:
    """The API calls on one registry; its transport holds the connections, credentials and retries."""

    def __init__(self, settings: RegistrySettings, sleep=time.sleep):
        self.transport = RegistryTransport(settings, sleep=sleep)
        self.host = self.transport.host
        self.timeout = self.transport.timeout
        self.concurrency = self.transport.concurrency
        self.write_gates = RepositoryGates()
        # A module replaces this with the one stop_on_sigterm() gives it.
        self.stop = StopRequest()

    @classmethod
    def from_params(cls, params: Dict[str, Any], prefix: str = "", **overrides) -> "RegistryClient":
        """A client for the registry the module parameters name (see RegistrySettings.from_params)."""
        return cls(RegistrySettings.from_params(params, prefix, **overrides))

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` of the registry, settled by the first call."""
        return self.transport.base_url

    @staticmethod
    def _repo_path(repository: str, *rest: str) -> str:
        return "/v2/" + quote(repository, safe="/") + "/" + "/".join(quote(part, safe=":") for part in rest)

    # ------------------------------------------------------------------ catalog

    def catalog(self, page_size: Optional[int] = None) -> List[str]:
        """Every repository name of the registry (all pages of ``/v2/_catalog``)."""
        page_size = page_size or DEFAULT_PAGE_SIZE
        return self.transport.paged(self.transport.url("/v2/_catalog?n=%d" % page_size), "repositories",
                                    "list the catalog", ["registry:catalog:*"], page_size)

    def list_tags(self, repository: str, page_size: Optional[int] = None) -> List[str]:
        """Every tag of ``repository``; RegistryNotFound when the repository is unknown."""
        page_size = page_size or DEFAULT_PAGE_SIZE
        url = self.transport.url(self._repo_path(repository, "tags", "list") + "?n=%d" % page_size)
        return self.transport.paged(url, "tags", "list the tags of %s" % repository,
                                    ["repository:%s:pull" % repository], page_size)

    # ---------------------------------------------------------------- manifests

    def head_manifest(self, repository: str, reference: str) -> Optional[ManifestHead]:
        """Digest, media type and size of a manifest, or None when there is none."""
        what = "look up manifest %s of %s" % (reference, repository)
        response = self.transport.call("HEAD", self._repo_path(repository, "manifests", reference), what,
                                       ["repository:%s:pull" % repository], headers={"Accept": MANIFEST_ACCEPT},
                                       not_found_ok=True)
        if response.status_code == 404:
            return None
        digest = self._header_digest(response, what)
        if not digest:
            manifest = self.get_manifest(repository, reference)
            if manifest is None:
                return None
            return ManifestHead(manifest.digest, manifest.media_type, manifest.size)
        length = response.headers.get("Content-Length")
        return ManifestHead(digest, media_type_of(response.headers.get("Content-Type")),
                            int(length) if length and length.isdigit() else None)

    def get_manifest(self, repository: str, reference: str) -> Optional[Manifest]:
        """The manifest with its exact bytes, or None when the tag or digest does not exist.

        The digest is verified: against ``reference`` when it is a digest,
        against the registry's Docker-Content-Digest header otherwise.
        Raises RegistryNotFound when the registry says the repository is unknown.
        """
        what = "get manifest %s of %s" % (reference, repository)
        response = self.transport.call("GET", self._repo_path(repository, "manifests", reference), what,
                                       ["repository:%s:pull" % repository], headers={"Accept": MANIFEST_ACCEPT},
                                       not_found_ok=True)
        if response.status_code == 404:
            errors = parse_error_body(response.content)
            if errors and errors[0].get("code") == "NAME_UNKNOWN":
                raise self.transport.error(response, what)
            return None
        body = response.content
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError("cannot %s on registry %s: manifest is larger than 4 MiB" % (what, self.host))
        expected = reference if is_digest(reference) else self._header_digest(response, what)
        digest = compute_digest(body, expected or "sha256:")
        if expected and digest != expected:
            raise RegistryError("cannot %s on registry %s: the manifest's content has digest %s, expected %s"
                                % (what, self.host, digest, expected))
        if not expected or not expected.startswith("sha256:"):
            digest = sha256_digest(body)
        try:
            return Manifest(digest, media_type_of(response.headers.get("Content-Type")), body)
        except RegistryError as exc:
            raise RegistryError("cannot %s on registry %s: %s" % (what, self.host, exc))

    def _header_digest(self, response, what) -> Optional[str]:
        """The Docker-Content-Digest header, checked to be a digest (None when absent)."""
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            return None
        try:
            return validate_digest(digest.strip())
        except ImageReferenceError:
            raise RegistryError("cannot %s on registry %s: its Docker-Content-Digest header %s is not a digest"
                                % (what, self.host, quoted(digest)))

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Store ``body`` byte for byte under ``reference`` (a tag or its digest); return its digest."""
        what = "put manifest %s of %s" % (reference, repository)
        digest = sha256_digest(body)
        if is_digest(reference) and reference != digest and reference.startswith("sha256:"):
            raise RegistryError("cannot %s: the manifest's digest is %s" % (what, digest))
        with self.write_gates.hold(repository, PUT):
            response = self.transport.call("PUT", self._repo_path(repository, "manifests", reference), what,
                                           ["repository:%s:pull,push" % repository],
                                           headers={"Content-Type": media_type}, ok=(200, 201, 202), data=body)
        answered = response.headers.get("Docker-Content-Digest")
        response.close()
        if answered and answered.startswith("sha256:") and answered != digest:
            raise RegistryError("cannot %s on registry %s: the registry stored digest %s, expected %s" % (
                what, self.host, answered, digest))
        return digest

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete the manifest ``digest`` (and with it every tag pointing at it).

        True when the registry confirmed the delete. False when an attempt failed (5xx)
        and a retry then found the manifest gone: distribution 2.x removes the manifest
        before it untags, so its tags may still be listed without resolving (dangling);
        the caller must check the tag list. RegistryNotFound when absent from the start,
        RegistryDeleteDisabled when deletes are off.
        """
        what = "delete manifest %s of %s" % (digest, repository)
        with self.write_gates.hold(repository, DELETE):
            response = self.transport.call("DELETE", self._repo_path(repository, "manifests", digest), what,
                                           ["repository:%s:delete" % repository], ok=(200, 202, 204), delete=True,
                                           not_found_ok=True)
        response.close()
        if response.status_code == 404 and response.attempts == 1:
            raise self.transport.error(response, what, delete=True)
        return response.status_code != 404

    def repository_request(self, method: str, repository: str, parts, what: str, query=None,
                           ok=(200,)) -> HttpResponse:
        """``method`` on ``/v2/<repository>/<parts...>[?query]``, for API calls without a method of their own
        (the OCI referrers API, tag delete), with this client's auth, retries and one-line errors.

        Returns the HttpResponse with its body read (``.content``, ``.headers``, ``.attempts``);
        a status not in ``ok`` raises its RegistryError (405 on a DELETE as deletes disabled).
        """
        path = self._repo_path(repository, *parts) + ("?" + urlencode(query) if query else "")
        action = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "pull,push")
        response = self.transport.call(method, path, what, ["repository:%s:%s" % (repository, action)], ok=tuple(ok),
                                       delete=method == "DELETE")
        try:
            _body = response.content if method != "HEAD" else b""
        finally:
            response.close()
        return response

    # -------------------------------------------------------------------- blobs

    def blob_exists(self, repository: str, digest: str) -> bool:
        """True when ``repository`` has (or can serve) the blob ``digest``."""
        response = self.transport.call("HEAD", self._repo_path(repository, "blobs", digest),
                                       "look up blob %s of %s" % (digest, repository),
                                       ["repository:%s:pull" % repository], ok=(200, 307, 302, 303), not_found_ok=True)
        response.close()
        return response.status_code != 404

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> bool:
        """Cross-repository mount of ``digest`` from ``source_repository``; False when the registry refused.

        When the registry answers by opening an upload instead (202), that
        upload is cancelled so that nothing is left behind.
        """
        what = "mount blob %s from %s into %s" % (digest, source_repository, repository)
        url = self._repo_path(repository, "blobs", "uploads") + "/?" + urlencode(
            [("mount", digest), ("from", source_repository)])
        scopes = ["repository:%s:pull,push" % repository, "repository:%s:pull" % source_repository]
        response = self.transport.call("POST", url, what, scopes, ok=(201, 202))
        response.close()
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if location:
            self._cancel_upload(urljoin(response.url, location), repository)
        return False

    def _cancel_upload(self, url, repository):
        try:
            self.transport.call("DELETE", url, "cancel an upload to %s" % repository,
                                ["repository:%s:pull,push" % repository], ok=(200, 202, 204, 404)).close()
        except RegistryError:
            pass  # best effort: the registry expires abandoned uploads itself

    def _blob_response(self, repository, digest, what):
        """A context manager yielding the streamed answer of a blob GET, after any redirects."""
        return self.transport.get_following_redirects(self._repo_path(repository, "blobs", digest), what,
                                                      ["repository:%s:pull" % repository])

    def get_blob_json(self, repository: str, digest: str) -> dict:
        """A small JSON blob (an image config), digest verified."""
        what = "get blob %s of %s" % (digest, repository)
        with self._blob_response(repository, digest, what) as response:
            # Small, so bounded like any answer read whole: within timeout of the request.
            try:
                body = read_body(response.raw, response.started + self.timeout, limit=MAX_JSON_BLOB_BYTES)
            except BodyDeadline:
                raise RegistryConnectionError("cannot %s on registry %s: the answer did not arrive completely"
                                              " within %s seconds (timeout)" % (what, self.host, self.timeout))
            except BodyTooLarge:
                raise RegistryError("cannot %s on registry %s: larger than 16 MiB" % (what, self.host))
        got = compute_digest(body, digest)
        if got != digest:
            raise RegistryError("cannot %s on registry %s: content has digest %s" % (what, self.host, got))
        try:
            data = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise RegistryError("cannot %s on registry %s: not JSON" % (what, self.host))
        if not isinstance(data, dict):
            raise RegistryError("cannot %s on registry %s: not a JSON object" % (what, self.host))
        return data

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str):
        """Stream a blob: yields ``(chunks, size)``; the chunks iterator verifies the digest at its end."""
        what = "download blob %s of %s" % (digest, repository)
        with self._blob_response(repository, digest, what) as response:
            length = response.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None

            def chunks():
                hasher = digest_hasher(digest)
                try:
                    for chunk in response.iter_content(BLOB_CHUNK_SIZE):
                        hasher.update(chunk)
                        yield chunk
                except CONNECTION_ERRORS as exc:
                    raise RegistryConnectionError("cannot %s on registry %s: %s" % (what, self.host, one_line(exc)))
                got = digest.split(":", 1)[0] + ":" + hasher.hexdigest()
                if got != digest:
                    raise RegistryError("cannot %s on registry %s: content has digest %s" % (what, self.host, got))

            yield chunks(), size

    def upload_blob(self, repository: str, digest: str, chunks_iterable, size: int) -> None:
        """Upload a blob from an iterable of byte chunks totalling ``size`` bytes (monolithic, streamed)."""
        what = "upload blob %s to %s" % (digest, repository)
        scopes = ["repository:%s:pull,push" % repository]
        response = self.transport.call("POST", self._repo_path(repository, "blobs", "uploads") + "/", what, scopes,
                                       ok=(202,))
        response.close()
        location = response.headers.get("Location")
        if not location:
            raise RegistryError("cannot %s on registry %s: no upload Location" % (what, self.host))
        upload_url = urljoin(response.url, location)
        try:
            response = self.transport.call("PUT", set_query(upload_url, digest=digest), what, scopes,
                                           headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                                           ok=(201, 204),
                                           data=SizedStream(chunks_iterable, size))
        except Exception:
            self._cancel_upload(upload_url, repository)
            raise
        response.close()

    # ------------------------------------------------------------- concurrency

    def map_bounded(self, func, items, stoppable: bool = True) -> list:
        """``[func(item) for item in items]`` on at most ``concurrency`` threads; the first error is raised.

        Once ``stop`` is requested (SIGTERM), items not started yet raise RegistryInterrupted,
        unless ``stoppable`` is False (the caller then checks ``stop`` itself).
        """
        return map_bounded(self._stoppable(func) if stoppable else func, items, self.concurrency)

    def _stoppable(self, func):
        def guarded(item):
            if self.stop.requested:
                raise RegistryInterrupted("stopped by SIGTERM before finishing on registry %s; nothing was"
                                          " left half done" % self.host)
            return func(item)
        return guarded

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
