# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage accounting: the bytes of the blobs that manifests reference, each blob counted once.

Pure functions over manifests already fetched (``Manifest`` models); fetching them is the
caller's job (``ManifestInspector.load_descendants``), so the figures cost no request here.

What counts as a blob: every manifest itself (the registry stores it as a blob too, under its
digest), and the config and layers of every image manifest. An index counts its own bytes; its
platform manifests (and the referrers a referrers tag lists, since that tag holds an index) count
as manifests of their own once they are reachable. A ``subject`` is not a blob of its referrer:
it belongs to the image it names. Sizes come from the manifests: a manifest's own length, the
``size`` of each config and layer descriptor (a descriptor without one counts 0 bytes). When two
manifests declare different sizes for one digest, the largest is taken, so that no figure is low.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Set


@dataclass(frozen=True)
class Reach:
    """What a walk from some root digests found: the manifests, and digests listed but not there."""

    manifests: List[object] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class RepositoryStorage:
    """One repository's blobs: how many, their bytes, and which of those bytes other repositories use too."""

    blobs: int
    bytes_total: int
    bytes_unique: int
    bytes_shared: int

    def to_result(self) -> dict:
        return dict(blobs=self.blobs, bytes_total=self.bytes_total, bytes_unique=self.bytes_unique,
                    bytes_shared=self.bytes_shared)


@dataclass(frozen=True)
class StorageReport:
    """Per repository figures, and the totals over all of them with every blob counted once."""

    repositories: Dict[str, RepositoryStorage]
    blobs: int
    bytes_total: int
    bytes_shared: int

    def total_result(self) -> dict:
        return dict(repositories=len(self.repositories), blobs=self.blobs, bytes_total=self.bytes_total,
                    bytes_shared=self.bytes_shared)


@dataclass(frozen=True)
class Unlinked:
    """Blobs that only the removed manifests reference: none of the kept manifests does."""

    manifests: int
    blobs: int
    size: int  # bytes of those blobs

    def to_result(self) -> dict:
        return dict(manifests=self.manifests, unlinked_blobs=self.blobs, unlinked_bytes=self.size)


def _size(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _add(sizes: Dict[str, int], digest, size) -> None:
    if isinstance(digest, str) and digest:
        sizes[digest] = max(sizes.get(digest, 0), _size(size))


def manifest_blobs(manifest) -> Dict[str, int]:
    """Digest -> bytes of the blobs ``manifest`` takes: itself, and for an image its config and layers."""
    sizes: Dict[str, int] = {}
    _add(sizes, manifest.digest, manifest.size)
    for descriptor in manifest.blob_descriptors:
        _add(sizes, descriptor.get("digest"), descriptor.get("size"))
    return sizes


def blobs_of(manifests: Iterable[object]) -> Dict[str, int]:
    """Digest -> bytes of every blob the ``manifests`` take, a blob several of them share counted once."""
    sizes: Dict[str, int] = {}
    for manifest in manifests:
        for digest, size in manifest_blobs(manifest).items():
            _add(sizes, digest, size)
    return sizes


def reachable(roots: Iterable[str], known: Mapping[str, Optional[object]]) -> Reach:
    """The manifests reachable from the digests ``roots`` through index entries, each once.

    ``known`` maps digests to fetched manifests (None or absent: the registry does not have it).
    Index entries are platform manifests, or referrers when the index is a referrers tag; an index
    listing an index is followed too, and a cycle (impossible with real digests) ends the walk.
    """
    found: List[object] = []
    missing: List[str] = []
    seen: Set[str] = set()
    pending = [digest for digest in roots if isinstance(digest, str)]
    while pending:
        digest = pending.pop()
        if digest in seen:
            continue
        seen.add(digest)
        manifest = known.get(digest)
        if manifest is None:
            missing.append(digest)
            continue
        found.append(manifest)
        pending.extend(child.get("digest") for child in manifest.child_descriptors
                       if isinstance(child.get("digest"), str) and child.get("digest") not in seen)
    found.sort(key=lambda manifest: manifest.digest)
    return Reach(manifests=found, missing=sorted(missing))


def account(repositories: Mapping[str, Iterable[object]]) -> StorageReport:
    """Bytes per repository of the blobs its ``manifests`` take, split into unique and shared.

    A blob is shared when another repository in ``repositories`` takes it too, unique otherwise:
    the split is only as wide as the repositories given. Within one repository a blob counts once
    however many tags or images use it; the totals count every blob once over all repositories.
    """
    per_repository = dict((name, blobs_of(manifests)) for name, manifests in repositories.items())
    users: Dict[str, int] = {}
    everything: Dict[str, int] = {}
    for sizes in per_repository.values():
        for digest, size in sizes.items():
            users[digest] = users.get(digest, 0) + 1
            _add(everything, digest, size)
    figures = {}
    for name, sizes in per_repository.items():
        shared = sum(size for digest, size in sizes.items() if users[digest] > 1)
        total = sum(sizes.values())
        figures[name] = RepositoryStorage(blobs=len(sizes), bytes_total=total, bytes_unique=total - shared,
                                          bytes_shared=shared)
    return StorageReport(
        repositories=figures, blobs=len(everything), bytes_total=sum(everything.values()),
        bytes_shared=sum(size for digest, size in everything.items() if users[digest] > 1))


def unlinked(removed: Iterable[object], kept: Iterable[object]) -> Unlinked:
    """The blobs that the ``removed`` manifests take and none of the ``kept`` manifests does.

    Both are whole sets of manifests (index children and listed referrers included, see
    ``reachable``); a manifest in both is kept.
    """
    kept_sizes = blobs_of(kept)
    removed = [manifest for manifest in removed if manifest.digest not in kept_sizes]
    freed = dict((digest, size) for digest, size in blobs_of(removed).items() if digest not in kept_sizes)
    return Unlinked(manifests=len(set(manifest.digest for manifest in removed)), blobs=len(freed),
                    size=sum(freed.values()))


def unlinked_by_deleting(deleted: Iterable[str], kept_roots: Iterable[str],
                         known: Mapping[str, Optional[object]]) -> Unlinked:
    """What deleting the manifests ``deleted`` (digests) unlinks while the ``kept_roots`` stay.

    Only the ``deleted`` manifests go: the entries of a deleted index that are not deleted too stay
    in the repository untagged, and keep their blobs, as does everything ``kept_roots`` (the kept tags'
    digests) reach. ``known`` holds the fetched manifests; a deleted digest not there counts nothing.
    """
    deleted = set(digest for digest in deleted if isinstance(digest, str))
    around = reachable(sorted(deleted), known)
    going = [manifest for manifest in around.manifests if manifest.digest in deleted]
    left_untagged = [manifest.digest for manifest in around.manifests if manifest.digest not in deleted]
    staying = reachable(list(kept_roots) + left_untagged, known)
    return unlinked(going, staying.manifests)
