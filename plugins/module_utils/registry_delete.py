# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe tag deletion on registries that have no "untag" call (distribution 2.x).

Deleting a manifest by digest removes every tag that points at it. To remove one tag
while other tags (or an index that is kept) still use its digest, the tag is first
re-pointed at a unique throw-away manifest, and that throw-away manifest is deleted
by digest, which removes only that tag:

1. the tag is checked to still point at the digest it was inspected with;
2. a throw-away OCI image manifest (no layers, a constant tiny config blob, and a
   unique annotation so that its digest is new) is PUT under the tag;
3. the throw-away manifest is deleted by its digest.

If step 2 or 3 fails, the original manifest's exact bytes are PUT back under the tag
before the error is raised, so the tag never ends up pointing at something the user did
not have. When a digest loses all of its tags (and no kept index refers to it) it is
deleted by digest once, which is both the fast and the exact way.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

from ansible_collections.dockhand.registry.plugins.module_utils.registry_client import (
    DELETE_FIX,
    RegistryDeleteDisabled,
    RegistryError,
    RegistryNotFound,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
# Constant bytes, hence a constant digest: uploaded once per repository, shared by all
# throw-away manifests, and unreferenced (so garbage collected) once they are deleted.
THROWAWAY_CONFIG = b'{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}'
THROWAWAY_ANNOTATION = "io.github.dockhand.registry.throwaway"
# A digest that cannot exist: deleting it tells "deletes disabled" from "deletes allowed"
# without changing anything.
PROBE_DIGEST = "sha256:" + "0" * 64


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


THROWAWAY_CONFIG_DIGEST = _sha256(THROWAWAY_CONFIG)


class TagDeleteError(Exception):
    """A tag could not be removed safely; the message is one line and says what state was left."""


@dataclass
class RemovalPlan:
    """What removing a set of tags takes: digests deleted outright and tags untagged one by one."""

    delete_digests: Dict[str, List[str]] = field(default_factory=dict)
    untag: Dict[str, str] = field(default_factory=dict)

    @property
    def tags(self) -> List[str]:
        tags = list(self.untag)
        for digest_tags in self.delete_digests.values():
            tags.extend(digest_tags)
        return sorted(tags)


@dataclass
class RemovalResult:
    removed_tags: List[str] = field(default_factory=list)
    deleted_digests: List[str] = field(default_factory=list)
    untagged: List[str] = field(default_factory=list)


def plan_removal(tag_digests: Dict[str, str], remove: Iterable[str], protected: Iterable[str] = ()) -> RemovalPlan:
    """Group the tags in ``remove`` by digest.

    ``tag_digests`` maps every tag of the repository to its digest; ``protected`` holds
    digests that must survive even without tags (children of kept indexes). A digest
    whose every tag is removed and which is not protected is deleted once by digest;
    every other removed tag is untagged through a throw-away manifest.
    """
    remove = set(remove)
    protected = set(protected)
    by_digest: Dict[str, List[str]] = {}
    for tag, digest in tag_digests.items():
        by_digest.setdefault(digest, []).append(tag)
    plan = RemovalPlan()
    for digest, tags in sorted(by_digest.items()):
        removed = sorted(tag for tag in tags if tag in remove)
        if not removed:
            continue
        if len(removed) == len(tags) and digest not in protected:
            plan.delete_digests[digest] = removed
        else:
            for tag in removed:
                plan.untag[tag] = digest
    return plan


def throwaway_manifest(repository: str, tag: str) -> bytes:
    """A minimal OCI image manifest whose digest no other manifest has."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": THROWAWAY_CONFIG_DIGEST, "size": len(THROWAWAY_CONFIG)},
        "layers": [],
        "annotations": {THROWAWAY_ANNOTATION: "%s:%s %s" % (repository, tag, uuid.uuid4().hex)},
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def resolve_tags(client, repository: str, tags: Iterable[str]) -> Dict[str, object]:
    """HEAD every tag on the bounded pool; returns tag -> ManifestHead for the tags that still exist."""
    tags = list(tags)
    heads = client.map_bounded(lambda tag: client.head_manifest(repository, tag), tags)
    return dict((tag, head) for tag, head in zip(tags, heads) if head is not None)


def is_index_media_type(media_type: Optional[str]) -> bool:
    return media_type in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )


def index_children(client, repository: str, heads: Iterable[object]) -> Dict[str, List[str]]:
    """Child digests of the index manifests among ``heads``: index digest -> child digests."""
    index_digests = sorted(set(head.digest for head in heads if is_index_media_type(head.media_type)))
    manifests = client.map_bounded(lambda digest: client.get_manifest(repository, digest), index_digests)
    children = {}
    for digest, manifest in zip(index_digests, manifests):
        if manifest is not None:
            children[digest] = [child["digest"] for child in manifest.child_descriptors]
    return children


def probe_delete_allowed(client, repository: str) -> None:
    """Raise RegistryDeleteDisabled before anything is written if the registry refuses deletes."""
    try:
        client.delete_manifest(repository, PROBE_DIGEST)
    except RegistryNotFound:
        return
    except RegistryDeleteDisabled as exc:
        # Name the repository, not the made-up digest of the probe.
        raise RegistryDeleteDisabled(
            "cannot delete from %s on registry %s: the registry has deletes disabled (405 UNSUPPORTED); %s"
            % (repository, client.host, DELETE_FIX), exc.status, exc.code)
    except RegistryError:
        # Other answers (some registries validate differently) prove nothing either way;
        # the real delete will report its own error.
        return


class TagRemover:
    """Removes tags from one repository following a RemovalPlan."""

    def __init__(self, client, repository: str):
        self.client = client
        self.repository = repository
        self._config_uploaded = False

    def _ensure_throwaway_config(self) -> None:
        if self._config_uploaded:
            return
        if not self.client.blob_exists(self.repository, THROWAWAY_CONFIG_DIGEST):
            self.client.upload_blob(
                self.repository, THROWAWAY_CONFIG_DIGEST, iter([THROWAWAY_CONFIG]), len(THROWAWAY_CONFIG)
            )
        self._config_uploaded = True

    def _restore(self, tag: str, original, cause: Exception) -> str:
        """Point ``tag`` back at ``original``; returns a phrase for the error message."""
        try:
            current = self.client.head_manifest(self.repository, tag)
            if current is not None and current.digest == original.digest:
                return "the tag still points at %s" % original.digest
            self.client.put_manifest(self.repository, tag, original.body, original.media_type)
            return "the tag was restored to %s" % original.digest
        except RegistryError as exc:
            return (
                "restoring the tag to %s ALSO FAILED (%s); restore it with registry_manifest"
                " state=present tag=%s source=%s@%s" % (original.digest, exc, tag, self.repository, original.digest)
            )

    def untag(self, tag: str, expected_digest: str, original) -> bool:
        """Remove ``tag`` (expected at ``expected_digest``, whose Manifest is ``original``) only.

        Returns False when the tag had already gone. Raises TagDeleteError if the tag moved
        or a step failed (after restoring the tag).
        """
        current = self.client.head_manifest(self.repository, tag)
        if current is None:
            return False
        if current.digest != expected_digest:
            raise TagDeleteError(
                "tag %s:%s now points at %s instead of %s; it changed while being removed, nothing was done to it"
                % (self.repository, tag, current.digest, expected_digest)
            )
        self._ensure_throwaway_config()
        try:
            throwaway_digest = self.client.put_manifest(
                self.repository, tag, throwaway_manifest(self.repository, tag), OCI_MANIFEST
            )
        except RegistryError as exc:
            state = self._restore(tag, original, exc)
            raise TagDeleteError(
                "could not re-point tag %s:%s at a throw-away manifest: %s; %s" % (self.repository, tag, exc, state)
            )
        try:
            self.client.delete_manifest(self.repository, throwaway_digest)
        except RegistryError as exc:
            state = self._restore(tag, original, exc)
            raise TagDeleteError(
                "could not delete the throw-away manifest %s of tag %s:%s: %s; %s"
                % (throwaway_digest, self.repository, tag, exc, state)
            )
        return True

    def delete_digest(self, digest: str) -> bool:
        """Delete a manifest by digest; False if it was already gone."""
        try:
            self.client.delete_manifest(self.repository, digest)
        except RegistryNotFound:
            return False
        return True

    def execute(self, plan: RemovalPlan, known_manifests: Optional[Dict[str, object]] = None) -> RemovalResult:
        """Carry out ``plan`` on the bounded pool.

        ``known_manifests`` (digest -> Manifest) are manifests the caller fetched already;
        the untag steps need the original bytes of the others and GET them once per digest.
        Every step is attempted; if any failed, TagDeleteError is raised with the first
        failure and ``.result`` holding what was done.
        """
        result = RemovalResult()
        originals = dict(known_manifests or {})
        untag_digests = sorted(set(plan.untag.values()) - set(originals))
        if untag_digests:
            fetched = self.client.map_bounded(
                lambda digest: self.client.get_manifest(self.repository, digest), untag_digests
            )
            originals.update(zip(untag_digests, fetched))

        def run(step):
            kind, key = step
            try:
                if kind == "digest":
                    return self.delete_digest(key), None
                original = originals.get(plan.untag[key])
                if original is None:
                    # The shared manifest vanished meanwhile, and with it the tag.
                    return False, None
                return self.untag(key, plan.untag[key], original), None
            except (RegistryError, TagDeleteError) as exc:
                return False, exc

        steps = [("digest", digest) for digest in plan.delete_digests] + [("tag", tag) for tag in plan.untag]
        if plan.untag:
            self._ensure_throwaway_config()
        outcomes = self.client.map_bounded(run, steps)
        first_error = None
        for (kind, key), (done, error) in zip(steps, outcomes):
            if error is not None:
                first_error = first_error or error
                continue
            if kind == "digest":
                result.deleted_digests.append(key)
                result.removed_tags.extend(plan.delete_digests[key])
            elif done:
                result.untagged.append(key)
                result.removed_tags.append(key)
        result.removed_tags.sort()
        if first_error is not None:
            if isinstance(first_error, RegistryDeleteDisabled):
                error = TagDeleteError(str(first_error))
            else:
                error = TagDeleteError(
                    "%s (%d of %d tags removed before the failure)"
                    % (first_error, len(result.removed_tags), len(plan.tags))
                )
            error.result = result
            raise error
        return result


@dataclass
class SingleTagPlan:
    """How one tag is removed: ``action`` is ``absent``, ``delete_digest`` or ``untag``."""

    action: str
    digest: Optional[str] = None
    sharing_tags: List[str] = field(default_factory=list)
    referencing_indexes: List[str] = field(default_factory=list)


def plan_single_tag(client, repository: str, tag: str) -> SingleTagPlan:
    """Inspect the repository and decide how ``tag`` can be removed without touching others."""
    head = client.head_manifest(repository, tag)
    if head is None:
        return SingleTagPlan(action="absent")
    others = [other for other in client.list_tags(repository) if other != tag]
    heads = resolve_tags(client, repository, others)
    sharing = sorted(other for other, other_head in heads.items() if other_head.digest == head.digest)
    referencing = sorted(
        index for index, children in index_children(client, repository, heads.values()).items()
        if head.digest in children
    )
    action = "untag" if sharing or referencing else "delete_digest"
    return SingleTagPlan(action=action, digest=head.digest, sharing_tags=sharing, referencing_indexes=referencing)


def remove_single_tag(client, repository: str, tag: str, plan: SingleTagPlan) -> bool:
    """Carry out ``plan`` for ``tag``; returns whether anything was removed."""
    if plan.action == "absent":
        return False
    remover = TagRemover(client, repository)
    if plan.action == "delete_digest":
        return remover.delete_digest(plan.digest)
    probe_delete_allowed(client, repository)
    original = client.get_manifest(repository, plan.digest)
    if original is None:
        return False
    return remover.untag(tag, plan.digest, original)
