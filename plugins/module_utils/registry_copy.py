# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy an image (manifest, index and blobs) from one repository to another.

* Same repository: the manifest's exact bytes are PUT under the new tag; nothing else moves.
* Another repository on the same registry: blobs are mounted across repositories.
* Another registry: blobs are streamed from source to target, never held whole in memory.

In every case blobs and child manifests the target already has are skipped, child manifests
of an index are PUT (by digest) before the index itself, and manifests are PUT with the
bytes received so that digests stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError
from ansible_collections.dockhand.registry.plugins.module_utils.oci import MAX_INDEX_DEPTH
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError

SAME_REPOSITORY = "same_repository"
MOUNT = "mount"
COPY = "copy"


class CopyError(DockhandError):
    """The image could not be copied; the message is one line."""


@dataclass
class CopyResult:
    """What a copy did: manifests written and blobs copied, mounted or found present."""

    manifests_put: List[str] = field(default_factory=list)
    blobs_copied: List[str] = field(default_factory=list)
    blobs_mounted: List[str] = field(default_factory=list)
    blobs_present: List[str] = field(default_factory=list)
    bytes_copied: int = 0

    def as_dict(self) -> dict:
        return dict(
            manifests_put=self.manifests_put,
            blobs_copied=self.blobs_copied,
            blobs_mounted=self.blobs_mounted,
            blobs_present=self.blobs_present,
            bytes_copied=self.bytes_copied,
        )


def copy_method(same_registry: bool, source_repository: str, target_repository: str) -> str:
    """How blobs get to the target: SAME_REPOSITORY, MOUNT or COPY."""
    if same_registry and source_repository == target_repository:
        return SAME_REPOSITORY
    return MOUNT if same_registry else COPY


def is_foreign_layer(descriptor: dict) -> bool:
    """Non-distributable layers are fetched from their URLs by clients and never pushed."""
    media_type = descriptor.get("mediaType") or ""
    return bool(descriptor.get("urls")) and ("foreign" in media_type or "nondistributable" in media_type)


def unique_blobs(manifests) -> List[dict]:
    """The config and layer descriptors of the image manifests in ``manifests``, each digest once."""
    seen = set()
    blobs = []
    for manifest in manifests:
        if manifest.is_index:
            continue
        for descriptor in manifest.blob_descriptors:
            digest = descriptor.get("digest")
            if digest and digest not in seen and not is_foreign_layer(descriptor):
                seen.add(digest)
                blobs.append(descriptor)
    return blobs


class ImageCopier:
    """Copies one image from ``source_repository`` to ``target_repository``."""

    def __init__(self, source_client, source_repository, target_client, target_repository, same_registry):
        self.source = source_client
        self.source_repository = source_repository
        self.target = target_client
        self.target_repository = target_repository
        self.method = copy_method(same_registry, source_repository, target_repository)
        self.result = CopyResult()

    def _missing_children(self, manifests, depth) -> List[object]:
        """Child manifests (children first, depth-first) the target repository lacks."""
        missing: List[object] = []
        for manifest in manifests:
            if not manifest.is_index:
                continue
            if depth >= MAX_INDEX_DEPTH:
                raise CopyError("index %s nests deeper than %d levels; refusing to copy it" % (manifest.digest, MAX_INDEX_DEPTH))
            child_digests = []
            for child in manifest.child_descriptors:
                if child.get("digest") and child["digest"] not in child_digests:
                    child_digests.append(child["digest"])
            present = self.target.map_bounded(
                lambda digest: self.target.head_manifest(self.target_repository, digest) is not None, child_digests
            )
            wanted = [digest for digest, exists in zip(child_digests, present) if not exists]
            fetched = self.source.map_bounded(
                lambda digest: self.source.get_manifest(self.source_repository, digest), wanted
            )
            for digest, child in zip(wanted, fetched):
                if child is None:
                    raise CopyError(
                        "index %s lists manifest %s, which %s/%s does not have"
                        % (manifest.digest, digest, self.source.host, self.source_repository)
                    )
            missing.extend(self._missing_children(fetched, depth + 1))
            missing.extend(fetched)
        return missing

    def _copy_blob(self, descriptor: dict) -> tuple:
        digest = descriptor["digest"]
        if self.target.blob_exists(self.target_repository, digest):
            return "present", 0
        if self.method == MOUNT and self.target.mount_blob(self.target_repository, digest, self.source_repository):
            return "mounted", 0
        with self.source.open_blob(self.source_repository, digest) as (chunks, size):
            if size is None:
                # No Content-Length (chunked answer): the descriptor's size is what the digest covers.
                size = descriptor.get("size")
            self.target.upload_blob(self.target_repository, digest, chunks, size)
        return "copied", size or 0

    def copy(self, manifest, reference: str) -> CopyResult:
        """Make ``reference`` (a tag or the digest) in the target repository name ``manifest``."""
        try:
            if self.method != SAME_REPOSITORY:
                children = self._missing_children([manifest], 0)
                blobs = unique_blobs(children + [manifest])
                outcomes = self.target.map_bounded(self._copy_blob, blobs)
                for descriptor, (outcome, size) in zip(blobs, outcomes):
                    getattr(self.result, "blobs_" + outcome).append(descriptor["digest"])
                    self.result.bytes_copied += size
                # Children before parents: a registry may refuse an index whose children it lacks.
                for child in children:
                    self.target.put_manifest(self.target_repository, child.digest, child.body, child.media_type)
                    self.result.manifests_put.append(child.digest)
            self.target.put_manifest(self.target_repository, reference, manifest.body, manifest.media_type)
            self.result.manifests_put.append(manifest.digest)
        except RegistryError as exc:
            raise CopyError(
                "copying %s/%s@%s to %s/%s:%s failed: %s"
                % (self.source.host, self.source_repository, manifest.digest,
                   self.target.host, self.target_repository, reference, exc)
            )
        return self.result


def summarize(result: CopyResult) -> Dict[str, int]:
    """Counts for a short message."""
    return dict(
        manifests=len(result.manifests_put),
        copied=len(result.blobs_copied),
        mounted=len(result.blobs_mounted),
        present=len(result.blobs_present),
    )
