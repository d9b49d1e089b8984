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

If step 2 or 3 fails, or SIGTERM arrives between them, the original manifest's exact
bytes are PUT back under the tag before the error is raised, so the tag never ends up
pointing at something the user did not have. When a digest loses all of its tags (and no
kept index refers to it) it is deleted by digest once, which is both the fast and the
exact way.

Dangling tags: distribution 2.x deletes a manifest before it untags, and a DELETE that
fails in between (a 500, a crash, a concurrent PUT in the repository) leaves tags that the
tag list shows but that answer 404. So a delete counts as done only when the registry
confirmed it, or, after an unclear answer, when the tag list no longer shows its tags. A
dangling tag is removed by PUTting a throw-away manifest under it and deleting that, which
works on 2.x too; so is a tag left on a throw-away manifest by an interrupted run.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError
from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    INDEX_MEDIA_TYPES,
    OCI_CONFIG,
    OCI_MANIFEST,
    sha256_digest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import (
    UntagSupport,
    classify_tag,
    delete_tag,
    plan_referrers_removal,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (
    DELETE_FIX,
    RegistryDeleteDisabled,
    RegistryError,
    RegistryNotFound,
)
from ansible_collections.dockhand.registry.plugins.module_utils.stop_request import StopRequest

# Constant bytes, hence a constant digest: uploaded once per repository, shared by all
# throw-away manifests, and unreferenced (so garbage collected) once they are deleted.
THROWAWAY_CONFIG = b'{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}'
THROWAWAY_ANNOTATION = "io.github.dockhand.registry.throwaway"
# A digest that cannot exist: deleting it tells "deletes disabled" from "deletes allowed"
# without changing anything.
PROBE_DIGEST = "sha256:" + "0" * 64
# A throw-away manifest is about 400 bytes; only manifests this small are fetched to check.
THROWAWAY_MAX_BYTES = 1024
# Rounds of "list the tags, clear what is left dangling" after unclear deletes. One round
# suffices unless another client keeps writing to the repository at the same time.
MAX_REPAIR_ROUNDS = 3
# Said after every delete: a registry frees no disk space when a manifest goes, only its GC does.
GC_NOTE = (
    "disk space returns only after the registry's garbage collection"
    " (dockhand.registry.registry_server, tasks_from: garbage_collect)"
)


THROWAWAY_CONFIG_DIGEST = sha256_digest(THROWAWAY_CONFIG)


class TagDeleteError(DockhandError):
    """A tag could not be removed safely; the message is one line and says what state was left."""


@dataclass
class RemovalPlan:
    """What removing a set of tags takes: digests deleted outright, tags untagged one by one,
    and dangling tags (listed but resolving to no image, or left on a throw-away manifest) cleared.

    ``by_name`` tags were chosen by their name alone, so what they point at was never read and
    does not matter: each goes with one tag DELETE and no re-check, on a registry known to untag only.
    """

    delete_digests: Dict[str, List[str]] = field(default_factory=dict)
    untag: Dict[str, str] = field(default_factory=dict)
    dangling: List[str] = field(default_factory=list)
    by_name: List[str] = field(default_factory=list)

    @property
    def tags(self) -> List[str]:
        tags = list(self.untag) + list(self.dangling) + list(self.by_name)
        for digest_tags in self.delete_digests.values():
            tags.extend(digest_tags)
        return sorted(tags)


@dataclass
class RemovalResult:
    removed_tags: List[str] = field(default_factory=list)
    deleted_digests: List[str] = field(default_factory=list)
    untagged: List[str] = field(default_factory=list)
    dangling: List[str] = field(default_factory=list)
    # Manifests whose every tag went by tag delete: they stay, untagged, until GC with delete-untagged.
    left_untagged: List[str] = field(default_factory=list)
    delete_method: str = "unknown"


def plan_removal(tag_digests: Dict[str, str], remove: Iterable[str], protected: Iterable[str] = (),
                 dangling: Iterable[str] = ()) -> RemovalPlan:
    """Group the tags in ``remove`` by digest.

    ``tag_digests`` maps every tag of the repository to its digest; ``protected`` holds
    digests that must survive even without tags (children of kept indexes). A digest
    whose every tag is removed and which is not protected is deleted once by digest;
    every other removed tag is untagged through a throw-away manifest. ``dangling`` tags
    (not in ``tag_digests``) are always cleared: there is no image behind them to keep.
    """
    remove = set(remove)
    protected = set(protected)
    by_digest: Dict[str, List[str]] = {}
    for tag, digest in tag_digests.items():
        by_digest.setdefault(digest, []).append(tag)
    plan = RemovalPlan(dangling=sorted(dangling))
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


def plan_referrers_of(client, repository: str, subjects: Iterable[str], tags: Iterable[str],
                      tag_digests: Dict[str, str], protected: Iterable[str] = ()):
    """The RemovalPlan for the referrers of ``subjects`` (digests about to go), and one detail per referrer.

    ``tags`` is the repository's tag list, ``tag_digests`` the digests of its image tags, ``protected``
    digests that must stay. A referrer under a tag of its own (not a referrer tag) stays with that tag.
    """
    tags = list(tags)
    removal = plan_referrers_removal(client, repository, subjects, tags)
    all_digests = dict(tag_digests)
    if removal.tags:
        # Every referrer tag, kept ones too: cosign-style signatures without a subject can be byte-identical
        # for two images, and a digest delete would take the kept image's tag along.
        referrer_tags = [tag for tag in tags if classify_tag(tag) is not None]
        all_digests.update((tag, head.digest) for tag, head in resolve_tags(client, repository, referrer_tags).items())
    plan = plan_removal(all_digests, [tag for tag in removal.tags if tag in all_digests], protected)
    tagged = set(all_digests.values())
    for digest in removal.digests:
        if digest not in tagged:
            plan.delete_digests.setdefault(digest, [])
    details = [entry for entry in removal.details if entry.get("digest") is None or entry["digest"] not in tagged]
    return plan, details


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


def resolve_tags(client, repository: str, tags: Iterable[str], stoppable: bool = True) -> Dict[str, object]:
    """HEAD every tag on the bounded pool; returns tag -> ManifestHead for the tags that still exist.

    A listed tag missing from the answer is dangling (or was removed meanwhile).
    """
    tags = list(tags)
    heads = client.map_bounded(lambda tag: client.head_manifest(repository, tag), tags, stoppable=stoppable)
    return dict((tag, head) for tag, head in zip(tags, heads) if head is not None)


def is_throwaway(manifest) -> bool:
    """Whether ``manifest`` is one of the throw-away manifests this collection writes."""
    if manifest is None or manifest.is_index:
        return False
    config = manifest.config_descriptor or {}
    annotations = manifest.data.get("annotations")
    return config.get("digest") == THROWAWAY_CONFIG_DIGEST and isinstance(annotations, dict) \
        and THROWAWAY_ANNOTATION in annotations


def may_be_throwaway(head) -> bool:
    """Whether a HEAD answer could be a throw-away manifest (so that a GET can tell)."""
    return head is not None and head.media_type == OCI_MANIFEST and (head.size or 0) <= THROWAWAY_MAX_BYTES


def head_is_throwaway(client, repository: str, head, cache: Optional[Dict[str, bool]] = None) -> bool:
    """Whether the manifest behind a HEAD answer is a throw-away manifest (one GET, and only for small ones)."""
    if not may_be_throwaway(head):
        return False
    cache = {} if cache is None else cache
    if head.digest not in cache:
        cache[head.digest] = is_throwaway(client.get_manifest(repository, head.digest))
    return cache[head.digest]


def find_throwaway_tags(client, repository: str, heads: Dict[str, object]) -> List[str]:
    """The tags among ``heads`` that point at a throw-away manifest (an interrupted delete).

    Only small OCI manifests are fetched, once per digest.
    """
    suspects = sorted(set(head.digest for head in heads.values() if may_be_throwaway(head)))
    manifests = client.map_bounded(lambda digest: client.get_manifest(repository, digest), suspects)
    throwaways = set(digest for digest, manifest in zip(suspects, manifests) if is_throwaway(manifest))
    return sorted(tag for tag, head in heads.items() if head.digest in throwaways)


def index_children(client, repository: str, heads: Iterable[object]) -> Dict[str, List[str]]:
    """Child digests of the index manifests among ``heads``: index digest -> child digests."""
    index_digests = sorted(set(head.digest for head in heads if head.media_type in INDEX_MEDIA_TYPES))
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
    """Removes tags from one repository following a RemovalPlan, leaving no tag dangling.

    ``stop`` (a StopRequest that SIGTERM sets) stops it between steps; a tag caught
    between the two writes of an untag is pointed back at its image first.
    """

    def __init__(self, client, repository: str, stop: Optional[StopRequest] = None,
                 untag_support: Optional[UntagSupport] = None):
        self.client = client
        self.repository = repository
        self.stop = stop or StopRequest()
        # Shared by every remover of one run, so the registry is asked once per run.
        self.untag_support = untag_support or UntagSupport()
        self._config_uploaded = False
        self._lock = threading.Lock()
        # Tags whose delete got an unclear answer: settle() checks them against the tag list.
        self._unsettled = set()
        self._throwaway_digests = {}

    def _ensure_throwaway_config(self) -> None:
        if self._config_uploaded:
            return
        if not self.client.blob_exists(self.repository, THROWAWAY_CONFIG_DIGEST):
            self.client.upload_blob(
                self.repository, THROWAWAY_CONFIG_DIGEST, iter([THROWAWAY_CONFIG]), len(THROWAWAY_CONFIG)
            )
        self._config_uploaded = True

    def _unsettle(self, tags) -> None:
        with self._lock:
            self._unsettled.update(tags)

    def _is_throwaway_head(self, head) -> bool:
        return head_is_throwaway(self.client, self.repository, head, self._throwaway_digests)

    def _restore(self, tag: str, original, throwaway_digest: Optional[str]) -> str:
        """Point ``tag`` back at ``original`` unless someone else moved it; returns a phrase for the message."""
        try:
            current = self.client.head_manifest(self.repository, tag)
            if current is not None and current.digest == original.digest:
                return "the tag still points at %s" % original.digest
            if current is not None and current.digest != throwaway_digest and not self._is_throwaway_head(current):
                return "the tag now points at %s, written by someone else; it was left so" % current.digest
            self.client.put_manifest(self.repository, tag, original.body, original.media_type)
            return "the tag was restored to %s" % original.digest
        except RegistryError as exc:
            return (
                "restoring the tag to %s ALSO FAILED (%s); restore it with registry_manifest"
                " state=present tag=%s source=%s@%s" % (original.digest, exc, tag, self.repository, original.digest)
            )

    def untag(self, tag: str, expected_digest: str, original) -> bool:
        """Remove ``tag`` (expected at ``expected_digest``, whose Manifest is ``original``) only.

        Returns False when the tag had already gone. Raises TagDeleteError if the tag moved,
        a step failed (after restoring the tag) or SIGTERM came between the two writes.
        """
        current = self.client.head_manifest(self.repository, tag)
        if current is None:
            self._unsettle([tag])  # gone, or dangling: the tag list tells
            return False
        if current.digest != expected_digest:
            now = self.client.get_manifest(self.repository, current.digest)
            if now is None or is_throwaway(now):
                # Another run is removing it too (its throw-away manifest, maybe deleted already),
                # or was killed doing so: settle() clears what is left.
                self._unsettle([tag])
                return True
            raise TagDeleteError(
                "tag %s:%s now points at %s instead of %s; it changed while being removed, nothing was done to it"
                % (self.repository, tag, current.digest, expected_digest)
            )
        if self.untag_support.supported:
            # One tag DELETE, which touches nothing else: no throw-away, nothing to restore.
            if not delete_tag(self.client, self.repository, tag):
                self._unsettle([tag])
            return True
        self._ensure_throwaway_config()
        try:
            throwaway_digest = self.client.put_manifest(
                self.repository, tag, throwaway_manifest(self.repository, tag), OCI_MANIFEST
            )
        except RegistryError as exc:
            state = self._restore(tag, original, None)
            raise TagDeleteError(
                "could not re-point tag %s:%s at a throw-away manifest: %s; %s" % (self.repository, tag, exc, state)
            )
        if self.stop.requested:
            state = self._restore(tag, original, throwaway_digest)
            raise TagDeleteError("stopped by SIGTERM while removing tag %s:%s; %s" % (self.repository, tag, state))
        try:
            if self.untag_support.probe(self.client, self.repository, tag, throwaway_digest):
                return True
            if not self.client.delete_manifest(self.repository, throwaway_digest):
                self._unsettle([tag])
        except RegistryNotFound:
            # Someone else (a concurrent run) deleted it first; the tag list tells whether the tag went.
            self._unsettle([tag])
        except RegistryError as exc:
            state = self._restore(tag, original, throwaway_digest)
            raise TagDeleteError(
                "could not delete the throw-away manifest %s of tag %s:%s: %s; %s"
                % (throwaway_digest, self.repository, tag, exc, state)
            )
        return True

    def untag_by_name(self, tag: str) -> bool:
        """Remove ``tag`` with one tag DELETE, reading nothing first (a RemovalPlan's ``by_name`` step).

        The caller chose the tag by its name alone, so a tag re-pointed since the tag list was read
        still is one the user asked to remove; the DELETE touches no other tag and no manifest.
        A 404 (gone meanwhile, or an unclear retried answer) is left to settle() and the tag list.
        """
        if not delete_tag(self.client, self.repository, tag):
            self._unsettle([tag])
        return True

    def delete_digest(self, digest: str, tags: Iterable[str] = ()) -> bool:
        """Delete a manifest by digest; False if it was already gone. ``tags`` are the tags expected to go with it."""
        try:
            confirmed = self.client.delete_manifest(self.repository, digest)
        except RegistryNotFound:
            self._unsettle(tags)
            return False
        if not confirmed:
            self._unsettle(tags)
        return True

    def clear_dangling(self, tag: str) -> bool:
        """Remove a tag that is listed but resolves to no image, or points at a throw-away manifest.

        A PUT of a throw-away manifest under it makes the registry's next DELETE untag it.
        False when the tag resolves to a real image (someone pushed it meanwhile): it is left.
        """
        head = self.client.head_manifest(self.repository, tag)
        if head is None:
            self._ensure_throwaway_config()
            digest = self.client.put_manifest(self.repository, tag, throwaway_manifest(self.repository, tag),
                                              OCI_MANIFEST)
        elif self._is_throwaway_head(head):
            digest = head.digest
        else:
            return False
        self.delete_digest(digest)
        self._unsettle([tag])
        return True

    def settle(self) -> None:
        """Make sure no tag whose delete got an unclear answer is left listed but dangling.

        Lists the tags, clears those still listed that resolve to nothing (or to a
        throw-away manifest), and checks again, at most MAX_REPAIR_ROUNDS times.
        """
        for _round in range(MAX_REPAIR_ROUNDS):
            with self._lock:
                pending = sorted(self._unsettled)
                self._unsettled.clear()
            if not pending:
                return
            try:
                listed = set(self.client.list_tags(self.repository))
            except RegistryNotFound:
                return  # the repository went with its last tag
            left = [tag for tag in pending if tag in listed]
            # Repairs run even after SIGTERM: they are what leaves the repository clean.
            heads = resolve_tags(self.client, self.repository, left, stoppable=False)
            broken = [tag for tag in left if tag not in heads or self._is_throwaway_head(heads[tag])]
            self.client.map_bounded(self.clear_dangling, broken, stoppable=False)
        with self._lock:
            pending = sorted(self._unsettled)
        if pending:
            raise TagDeleteError(
                "tags %s of %s are still listed but resolve to no image after %d repairs (another client keeps"
                " writing to the repository?); run again to remove them" % (
                    ", ".join(pending[:10]), self.repository, MAX_REPAIR_ROUNDS))

    def execute(self, plan: RemovalPlan, known_manifests: Optional[Dict[str, object]] = None,
                digests_by_untag: bool = True) -> RemovalResult:
        """Carry out ``plan`` on the bounded pool.

        ``known_manifests`` (digest -> Manifest) are manifests the caller fetched already;
        the untag steps need the original bytes of the others and GET them once per digest.
        Every step is attempted; if any failed, TagDeleteError is raised with the first
        failure and ``.result`` holding what was done.

        While the run does not know whether the registry untags, the first tag is removed alone,
        through a throw-away manifest with a tag DELETE as the probe (UntagSupport). On a registry
        that untags, every other tag then goes by tag DELETE, those of digests losing all their tags
        too (a digest delete costs the registry a scan of all tags): such manifests stay untagged
        (RemovalResult.left_untagged) until GC with delete-untagged. ``digests_by_untag=False`` keeps
        digest deletes for a caller that was asked to delete manifests, not tags. ``plan.by_name`` steps
        need a registry known to untag: each is one tag DELETE with nothing read before it.
        """
        result = RemovalResult()
        originals = dict(known_manifests or {})
        total = len(plan.tags)
        if plan.by_name and not self.untag_support.supported:
            # Without tag delete a tag can only go with a manifest, which must be read first.
            raise TagDeleteError(
                "tags %s of %s are to be removed by name, but registry %s is not known to delete single tags;"
                " nothing was done" % (", ".join(plan.by_name[:10]), self.repository, self.client.host))
        probed = None
        if self.untag_support.supported is None and (plan.untag or plan.delete_digests) and not self.stop.requested:
            probed = self._probe_with_first_tag(plan, originals, result)
        if self.untag_support.supported and digests_by_untag:
            plan = self._untag_plan(plan, result)
        if probed is not None:
            plan = plan_without(plan, probed)
        untag_digests = [] if self.untag_support.supported else sorted(set(plan.untag.values()) - set(originals))
        if untag_digests:
            fetched = self.client.map_bounded(
                lambda digest: self.client.get_manifest(self.repository, digest), untag_digests
            )
            originals.update(zip(untag_digests, fetched))

        def run(step):
            kind, key = step
            if self.stop.requested:
                return None, None
            try:
                if kind == "digest":
                    return self.delete_digest(key, plan.delete_digests[key]), None
                if kind == "dangling":
                    return self.clear_dangling(key), None
                if kind == "name":
                    return self.untag_by_name(key), None
                original = originals.get(plan.untag[key])
                if original is None and not self.untag_support.supported:
                    # The shared manifest vanished meanwhile, and with it the tag.
                    return False, None
                return self.untag(key, plan.untag[key], original), None
            except (RegistryError, TagDeleteError) as exc:
                return False, exc

        steps = ([("digest", digest) for digest in plan.delete_digests] + [("tag", tag) for tag in plan.untag]
                 + [("name", tag) for tag in plan.by_name] + [("dangling", tag) for tag in plan.dangling])
        if plan.untag or plan.dangling:
            self._ensure_throwaway_config()
        outcomes = self.client.map_bounded(run, steps, stoppable=False)
        first_error = None
        skipped = 0
        for (kind, key), (done, error) in zip(steps, outcomes):
            if error is not None:
                first_error = first_error or error
                continue
            if done is None:
                skipped += 1
            elif kind == "digest":
                result.deleted_digests.append(key)
                result.removed_tags.extend(plan.delete_digests[key])
            elif kind == "dangling":
                if done:
                    result.dangling.append(key)
                    result.removed_tags.append(key)
            elif done:
                result.untagged.append(key)
                result.removed_tags.append(key)
        result.removed_tags.sort()
        result.delete_method = self.untag_support.method
        try:
            self.settle()
        except (RegistryError, TagDeleteError) as exc:
            first_error = first_error or exc
        if first_error is None and skipped:
            first_error = TagDeleteError("stopped by SIGTERM; no tag was left half removed; run again to finish")
        if first_error is not None:
            if isinstance(first_error, RegistryDeleteDisabled):
                error = TagDeleteError(str(first_error))
            else:
                error = TagDeleteError(
                    "%s (%d of %d tags removed before the failure)"
                    % (first_error, len(result.removed_tags), total)
                )
            error.result = result
            raise error
        return result

    def _probe_with_first_tag(self, plan: RemovalPlan, originals: Dict[str, object],
                              result: RemovalResult) -> Optional[str]:
        """Remove one planned tag through a throw-away manifest, probing for untag; returns that tag.

        Its outcome goes into ``result``; a failure is raised as the step's own failure would be.
        """
        if plan.untag:
            tag = sorted(plan.untag)[0]
            digest = plan.untag[tag]
        else:
            tagged = sorted(digest for digest, tags in plan.delete_digests.items() if tags)
            if not tagged:
                return None  # only untagged manifests: digest deletes, nothing to learn from
            digest = tagged[0]
            tag = plan.delete_digests[digest][0]
        if digest not in originals:
            originals[digest] = self.client.get_manifest(self.repository, digest)
        if originals[digest] is None:
            return None
        try:
            done = self.untag(tag, digest, originals[digest])
        except (RegistryError, TagDeleteError) as exc:
            error = TagDeleteError("%s (0 of %d tags removed before the failure)" % (exc, len(plan.tags)))
            result.delete_method = self.untag_support.method
            error.result = result
            raise error
        if done:
            result.removed_tags.append(tag)
            # A tag of a digest that goes by digest on the throw-away path is no untag, just removed first.
            if tag in plan.untag or self.untag_support.supported:
                result.untagged.append(tag)
        return tag

    def _untag_plan(self, plan: RemovalPlan, result: RemovalResult) -> RemovalPlan:
        """``plan`` with every digest delete turned into tag deletes (the registry untags).

        A digest planned without tags (an untagged referrer) can only go by digest, and still does.
        """
        untag = dict(plan.untag)
        untagged_only = {}
        for digest, tags in plan.delete_digests.items():
            if not tags:
                untagged_only[digest] = []
                continue
            result.left_untagged.append(digest)
            for tag in tags:
                untag[tag] = digest
        result.left_untagged.sort()
        return RemovalPlan(delete_digests=untagged_only, untag=untag, dangling=list(plan.dangling),
                           by_name=list(plan.by_name))


def plan_without(plan: RemovalPlan, tag: str) -> RemovalPlan:
    """``plan`` without the steps for ``tag``, which is done already."""
    untag = dict((key, digest) for key, digest in plan.untag.items() if key != tag)
    delete_digests = {}
    for digest, tags in plan.delete_digests.items():
        # The digest itself is still deleted, even when ``tag`` was its last tag.
        delete_digests[digest] = [other for other in tags if other != tag]
    return RemovalPlan(delete_digests=delete_digests, untag=untag, dangling=list(plan.dangling),
                       by_name=[other for other in plan.by_name if other != tag])


@dataclass
class SingleTagPlan:
    """How one tag is removed: ``action`` is ``absent``, ``delete_digest``, ``untag`` or ``dangling``."""

    action: str
    digest: Optional[str] = None
    sharing_tags: List[str] = field(default_factory=list)
    referencing_indexes: List[str] = field(default_factory=list)


def plan_single_tag(client, repository: str, tag: str) -> SingleTagPlan:
    """Inspect the repository and decide how ``tag`` can be removed without touching others."""
    head = client.head_manifest(repository, tag)
    if head is None:
        try:
            listed = tag in client.list_tags(repository)
        except RegistryNotFound:
            listed = False
        # Listed but not resolving: a dangling tag, left by an interrupted delete.
        return SingleTagPlan(action="dangling" if listed else "absent")
    listed = client.list_tags(repository)
    others = [other for other in listed if other != tag]
    heads = resolve_tags(client, repository, others)
    if head.digest not in set(other.digest for other in heads.values()) and head_is_throwaway(client, repository, head):
        # Left on a throw-away manifest by an interrupted delete.
        return SingleTagPlan(action="dangling", digest=head.digest)
    sharing = sorted(other for other, other_head in heads.items() if other_head.digest == head.digest)
    referencing = sorted(
        index for index, children in index_children(client, repository, heads.values()).items()
        if head.digest in children
    )
    action = "untag" if sharing or referencing else "delete_digest"
    return SingleTagPlan(action=action, digest=head.digest, sharing_tags=sharing, referencing_indexes=referencing)


def remove_single_tag(client, repository: str, tag: str, plan: SingleTagPlan,
                      stop: Optional[StopRequest] = None, untag_support: Optional[UntagSupport] = None) -> bool:
    """Carry out ``plan`` for ``tag``; returns whether anything was removed.

    An ``untag`` plan re-points the tag at a throw-away manifest and then tries the registry's tag
    DELETE (``untag_support`` tells afterwards which way it went).
    """
    if plan.action == "absent":
        return False
    remover = TagRemover(client, repository, stop, untag_support)
    if plan.action == "delete_digest":
        removed = remover.delete_digest(plan.digest, [tag])
    else:
        probe_delete_allowed(client, repository)
        if plan.action == "dangling":
            removed = remover.clear_dangling(tag)
        else:
            original = client.get_manifest(repository, plan.digest)
            removed = original is not None and remover.untag(tag, plan.digest, original)
    remover.settle()
    return removed
