# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only views of manifests: image config summary, layers, platforms, total size.

``ManifestInspector`` fetches each manifest and image config at most once per
repository and does bulk work with the client's ``map_bounded``. The cache key is
(repository, digest): content is addressed by digest, but whether a registry has it
(and a 404 cached as None) is a matter of each repository.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DOCKER_HUB_API_HOST,
    MAX_INDEX_DEPTH,
    Manifest,
    parse_created,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryNotFound


def hub_repository(client, repository: str) -> str:
    """Docker Hub keeps official images under ``library/``; other registries take names as given."""
    if client.host == DOCKER_HUB_API_HOST and "/" not in repository:
        return "library/" + repository
    return repository


def newest_created(values) -> Optional[str]:
    """The latest of several ``created`` strings (as written by the image), or None."""
    best = None
    best_time = None
    for value in values:
        when = parse_created(value)
        if when is not None and (best_time is None or when > best_time):
            best, best_time = value, when
    return best


def config_summary(config: Optional[dict]) -> Optional[dict]:
    """created, os, architecture, variant and labels of an image config."""
    if config is None:
        return None
    inner = config.get("config") or {}
    return dict(
        created=config.get("created"),
        os=config.get("os"),
        architecture=config.get("architecture"),
        variant=config.get("variant"),
        labels=dict(inner.get("Labels") or {}),
    )


def descriptor_summary(descriptor: dict) -> dict:
    return dict(digest=descriptor.get("digest"), size=descriptor.get("size"),
                media_type=descriptor.get("mediaType"))


def platform_summary(descriptor: dict) -> dict:
    platform = descriptor.get("platform") or {}
    result = descriptor_summary(descriptor)
    result.update(os=platform.get("os"), architecture=platform.get("architecture"),
                  variant=platform.get("variant"), os_version=platform.get("os.version"))
    return result


class ReadOnceClient:
    """A client whose manifest GETs by digest go through a ManifestInspector's cache; all else is the client's.

    For code that takes a client (the referrers checks of retention), so that a manifest it reads is
    not read again by the inspector's other users in the same run, and the other way round.
    """

    def __init__(self, client, inspector: "ManifestInspector"):
        self._client = client
        self._inspector = inspector

    def get_manifest(self, repository: str, reference: str) -> Optional[Manifest]:
        return self._inspector.manifest(repository, reference)

    def __getattr__(self, name):
        return getattr(self._client, name)


class ManifestInspector:
    """Fetches manifests and configs for reporting; thread safe caches keyed by (repository, digest)."""

    def __init__(self, client):
        self.client = client
        self._lock = threading.Lock()
        self._manifests: Dict[Tuple[str, str], Optional[Manifest]] = {}
        self._configs: Dict[Tuple[str, str], Optional[dict]] = {}

    def manifest(self, repository: str, reference: str) -> Optional[Manifest]:
        """``get_manifest`` with a cache for digests (tags may move, so they are not cached)."""
        if ":" in reference and (repository, reference) in self._manifests:
            return self._manifests[(repository, reference)]
        found = self.client.get_manifest(repository, reference)
        if found is not None:
            with self._lock:
                self._manifests[(repository, found.digest)] = found
        elif ":" in reference:
            with self._lock:
                self._manifests[(repository, reference)] = None
        return found

    def cached(self, repository: str, digest: str) -> Optional[Manifest]:
        """The manifest ``digest`` of ``repository`` if an earlier fetch (by tag or digest) already brought it."""
        return self._manifests.get((repository, digest))

    def known(self, repository: str) -> Dict[str, Optional[Manifest]]:
        """Digest -> manifest of every fetch in ``repository`` so far (None: the registry answered 404), as a copy."""
        with self._lock:
            return dict((digest, manifest) for (name, digest), manifest in self._manifests.items()
                        if name == repository)

    def config(self, repository: str, digest: str) -> Optional[dict]:
        if (repository, digest) in self._configs:
            return self._configs[(repository, digest)]
        try:
            data = self.client.get_blob_json(repository, digest)
        except RegistryNotFound:
            data = None
        with self._lock:
            self._configs[(repository, digest)] = data
        return data

    def _children(self, repository: str, manifest: Manifest) -> List[Manifest]:
        children = []
        for descriptor in manifest.child_descriptors:
            child = self._manifests.get((repository, descriptor.get("digest")))
            if child is not None:
                children.append(child)
        return children

    def load_children(self, items: List[Tuple[str, Manifest]]) -> None:
        """Fetch the platform manifests of every index in ``items`` ((repository, manifest) pairs)."""
        wanted = {}
        for repository, manifest in items:
            if manifest is None:
                continue
            for descriptor in manifest.child_descriptors:
                key = (repository, descriptor.get("digest"))
                if key[1] and key not in self._manifests:
                    wanted[key] = True
        self.client.map_bounded(lambda key: self.manifest(*key), list(wanted))

    def load_descendants(self, items: List[Tuple[str, Manifest]], max_depth: int = MAX_INDEX_DEPTH) -> None:
        """``load_children`` again and again, for indexes that list indexes (a referrers tag listing a signed
        index, say), until nothing new is listed or ``max_depth`` levels are read. Each digest is fetched once."""
        level = [item for item in items if item[1] is not None]
        for _depth in range(max_depth):
            wanted = [(repository, descriptor.get("digest")) for repository, manifest in level
                      for descriptor in manifest.child_descriptors if descriptor.get("digest")]
            new = [key for key in wanted if key not in self._manifests]
            if not new:
                return
            self.load_children(level)
            level = [(repository, self._manifests.get((repository, digest))) for repository, digest in new]
            level = [item for item in level if item[1] is not None]

    def load_configs(self, items: List[Tuple[str, Manifest]]) -> None:
        """Fetch the image configs of every image (and platform image) in ``items``."""
        wanted = {}
        for repository, manifest in items:
            if manifest is None:
                continue
            images = self._children(repository, manifest) if manifest.is_index else [manifest]
            for image in images:
                config = image.config_descriptor
                key = (repository, config.get("digest") if config else None)
                if key[1] and key not in self._configs:
                    wanted[key] = True
        self.client.map_bounded(lambda key: self.config(*key), list(wanted))

    def total_size(self, repository: str, manifest: Manifest) -> int:
        images = self._children(repository, manifest) if manifest.is_index else [manifest]
        total = manifest.size if manifest.is_index else 0
        blobs = {}
        for image in images:
            total += image.size
            for descriptor in image.blob_descriptors:
                blobs[descriptor.get("digest")] = int(descriptor.get("size") or 0)
        return total + sum(blobs.values())

    def created(self, repository: str, manifest: Manifest) -> Optional[str]:
        images = self._children(repository, manifest) if manifest.is_index else [manifest]
        values = []
        for image in images:
            config = image.config_descriptor
            data = self._configs.get((repository, config.get("digest"))) if config else None
            if data and data.get("created"):
                values.append(data["created"])
        if not manifest.is_index:
            return values[0] if values else None
        return newest_created(values)

    def tag_manifests(self, pairs: List[Tuple[str, str]]) -> List[Optional[Manifest]]:
        """The manifest of each (repository, tag), None for a tag that vanished; one GET per tag."""
        return self.client.map_bounded(lambda pair: self.manifest(pair[0], pair[1]), pairs)

    def summarize_many(self, pairs: List[Tuple[str, str]],
                       manifests: Optional[List[Optional[Manifest]]] = None) -> List[Optional[dict]]:
        """For each (repository, tag): digest, media_type, created, size; None for a tag that vanished.

        ``manifests``: the ``tag_manifests`` of ``pairs`` when the caller fetched them already.
        """
        if manifests is None:
            manifests = self.tag_manifests(pairs)
        items = [(repository, manifest) for (repository, _tag), manifest in zip(pairs, manifests)]
        self.load_children(items)
        self.load_configs(items)
        summaries = []
        for repository, manifest in items:
            if manifest is None:
                summaries.append(None)
                continue
            summaries.append(dict(
                digest=manifest.digest, media_type=manifest.media_type,
                created=self.created(repository, manifest), size=self.total_size(repository, manifest),
            ))
        return summaries
