#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_repo
short_description: Apply a retention policy to a registry repository, or empty it
version_added: 1.0.0
description:
  - Manages the tags of one repository on a registry that speaks the Registry HTTP API v2
    (the distribution registry, C(registry:2)), without a Docker engine.
  - O(state=absent) deletes every manifest of the repository, so that its tag list becomes empty.
  - O(state=present) applies a retention policy (O(keep_last), O(keep_tags), O(match), O(older_than)) and
    removes only the tags it selects.
  - Each selected tag is removed with the safe single-tag delete of M(dockhand.registry.registry_manifest).
    Tags are grouped by digest; a digest whose every tag is selected (and which no kept index lists) is deleted
    once by digest. A selected tag that shares its digest with a kept tag is removed through a unique throw-away
    manifest, so the kept tag, and with it the image, stays.
  - On a registry that deletes single tags (OCI tag delete, for example distribution v3), every selected tag is
    removed with one tag DELETE instead, also when its manifest loses every tag, since a digest delete there costs the
    registry a scan of all tags. The manifests so left untagged are listed in RV(untagged_manifests) when their
    digests were read (see the next paragraph). Whether the
    registry can untag is learned once per run with the first selected tag, after it points at a throw-away manifest
    of the module's own, so the question never risks anything but that throw-away (see RV(delete_method)).
  - What is read depends on the rule and on the registry. O(keep_last) and O(older_than) rank images, so every
    candidate's manifest and image configuration is read. With them, with referrers to keep up, and on a registry
    that does not untag, every tag is read (a HEAD, unless its manifest was read already) to learn its digest, and
    each tag is read again right before it is removed and left, with an error, if it moved since the plan, since there
    the plan depended on the digest. A rule on names alone (O(match), O(keep_tags)) on a registry that untags, without
    O(storage=true), reads only the kept tags (to find dangling ones, see RV(dangling_tags)) and the first selected tag (which learns how
    the registry deletes, and whether it has the referrers API); every other selected tag goes with one tag DELETE
    and nothing read before it. The rule's choice does not depend on what the tag points at, so a tag re-pointed
    between the tag list and its DELETE is still a tag the rule selects, and goes; a tag pushed after the tag list
    was read is not touched. That way runs only when the tag list holds no referrer tag and the registry has no
    referrers API (see below), since keeping referrers consistent needs the digests; otherwise every tag is read.
  - Signatures, SBOMs and attestations (referrers) are never retention candidates. Their tags, the referrers tag
    C(sha256-<hex>) and cosign-style C(sha256-<hex>.sig), C(.att) and C(.sbom), are kept while their image is
    kept (RV(reasons) says V(referrer tag of a kept image)). When an image's manifest is deleted (every tag of it
    selected), its referrers go first, in the same run and in check mode's plan (RV(deleted_referrers)), that is the ones
    the referrers API or the referrers tag lists, that tag, and the cosign-style tags. A referrer that has a tag of
    its own stays unless the policy selects that tag. A referrers list naming a manifest whose subject is another
    image fails with one line before anything is deleted. State V(absent) deletes everything anyway.
  - Deleting frees no disk space by itself; the registry's garbage collection does (see the
    P(dockhand.registry.registry_server#role) role's C(garbage_collect) tasks). Manifests left untagged by the
    untag path need garbage collection with delete-untagged.
author:
  - dockhand.registry contributors (@dockhand)
extends_documentation_fragment:
  # Ours first: for attributes set twice, the fragment named first wins.
  - dockhand.registry.registry
  - dockhand.registry.registry.actiongroup_registry
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details:
      - Returns the same plan (RV(deleted_tags), RV(kept_tags)) without deleting anything, whatever the registry.
      - Check mode sends no write, so it cannot learn whether the registry untags; RV(delete_method) is
        V(undecided) and RV(deleted_digests) lists the digests the throw-away path would delete. It reads every
        tag, also for a rule on names alone, so RV(deleted_tags), RV(kept_tags), RV(reasons) and the diff are those
        of the real run on either path.
  diff_mode:
    support: full
    details: Shows the tag list before and after.
  idempotent:
    support: full
    description: Running the task again with the same policy reports no change once the selected tags are gone.
options:
  repository:
    description:
      - The repository in the registry given by O(registry), without the registry part, for example V(team/app).
      - With O(state=present) a repository the registry does not know is an error; with O(state=absent) it is
        already absent.
    type: str
    required: true
  state:
    description:
      - V(present) applies the retention policy. Without O(keep_last), O(older_than) and O(match) nothing is deleted.
      - V(absent) deletes every manifest of the repository, including the child manifests of its indexes.
    type: str
    choices: [present, absent]
    default: present
  keep_last:
    description:
      - Of the candidate tags (see O(match)), keep the N whose images were created last (the C(created) time
        of the image configuration; for an index, of its newest platform image). Ties are broken by tag name.
        Tags whose creation time is unknown rank oldest.
      - Each candidate costs one manifest GET, and each distinct image one config GET.
    type: int
  keep_tags:
    description:
      - Regular expressions (Python C(re.search), so anchor them); tags matching any of them are never deleted.
    type: list
    elements: str
    default: []
  match:
    description:
      - Regular expressions (Python C(re.search)); only tags matching one of them are candidates for deletion.
      - When neither O(keep_last) nor O(older_than) is set, every candidate that O(keep_tags) does not protect is
        deleted.
    type: list
    elements: str
    default: []
  older_than:
    description:
      - Only delete candidates whose image was created more than this long ago, written as numbers with the units
        V(w), V(d), V(h), V(m), V(s), for example V(30d), V(12h) or V(1d12h).
      - Tags whose creation time is unknown are kept.
    type: str
  storage:
    description:
      - Add RV(storage), the bytes that the manifests this run deletes (in check mode, would delete) leave to
        the registry's garbage collection, as the plan counts them before any delete. A second run, with
        nothing left to delete, reports zero.
      - Counted are the blobs (each manifest itself, the configs and layers of image manifests) that the
        deleted manifests take, RV(deleted_digests) and the referrers deleted with them, and that no manifest
        this repository keeps takes. Kept are the manifests the kept tags reach (platform manifests, and
        referrers that cosign-style tags or a referrers tag hold, included), and the platform manifests of a
        deleted index that are not deleted themselves (O(state=present) deletes the index, not its entries,
        which stay untagged). Each blob counts once.
      - Within this repository only. Other repositories are not read (that costs a request per tag of every
        repository in the registry), so a blob that another repository also uses is counted here although
        garbage collection keeps it; O(dockhand.registry.registry_repo_info#module:storage=true)
        tells which bytes are shared. Manifests already untagged are not seen either (the registry API cannot
        list them), and would keep their blobs too; nor are the referrers of kept images that only the registry's
        referrers API lists, untagged (a blob they share with a deleted manifest, such as an empty config, is
        counted). So the figure is the most the run can free of the images' bytes. Garbage collection also frees
        the throw-away manifest and config (a few hundred bytes) that a run leaves when it learns whether the
        registry untags or removes a tag that shares its image; they are not counted.
      - When the registry untags (RV(delete_method=untag)), the manifests losing every tag stay, untagged, and
        their bytes come back only when garbage collection runs with delete-untagged.
      - With O(storage=true) the tags a rule deletes are read, so a rule on names alone (O(match), O(keep_tags))
        takes the digest route's reads (a HEAD per tag) instead of deleting the selected tags unread.
      - Costs one manifest GET per deleted manifest, per distinct digest of a kept tag and per platform manifest
        or listed referrer, each digest once per run (the ones O(keep_last) fetched already are not fetched
        again), up to O(concurrency) at once. No config or layer is read; sizes come from the descriptors in the
        manifests. Nothing is fetched when the plan deletes no manifest.
    type: bool
    default: false
notes:
  - Tags that share a digest with a kept tag keep the image alive; only the tag goes.
  - No run leaves a dangling tag (one the tag list shows but that answers 404). On distribution 2.x a manifest
    delete removes the manifest before it untags, and a delete that fails in between leaves such tags behind, so a
    delete counts as done only when the registry confirmed it or the tag list shows its tags gone. Within one run,
    manifest writes and deletes in the repository never overlap (that overlap makes 2.x fail deletes half way);
    reads, and writes of one kind, still run O(concurrency) at a time.
  - Every run that applies a rule, and O(state=absent), removes dangling tags found in the repository, whoever left
    them, and tags left on a throw-away manifest by a killed run (see RV(dangling_tags)). O(keep_tags) cannot keep
    them, since there is no image to keep. When a rule on names alone goes the untag way, a selected tag left on a
    throw-away manifest goes by its tag DELETE, and that small throw-away manifest waits, untagged, for garbage
    collection with delete-untagged.
  - On SIGTERM the module starts no further delete; a tag caught between the two writes of the throw-away delete
    is pointed back at its image, and the module fails with one line. Running it again finishes the job.
  - A failure part way reports the tags deleted so far in RV(deleted_tags) and fails; a tag being removed through
    a throw-away manifest is pointed back at its image before the module fails.
  - On distribution 2.x every manifest delete makes the registry read the link file of every tag in the
    repository, to untag the ones that point at the digest, so a large clean-up costs registry CPU in proportion
    to the number of deletes times the number of tags. Deleting 900 of 1,000 tags took about 11 seconds of
    registry CPU in the collection's benchmarks, whatever the client.
seealso:
  - module: dockhand.registry.registry_manifest
  - module: dockhand.registry.registry_repo_info
"""

EXAMPLES = r"""
- name: Keep the 10 newest release tags and anything named latest or stable
  dockhand.registry.registry_repo:
    registry: registry.example.com
    repository: team/app
    match: ['^v?\d+\.\d+\.\d+$']
    keep_last: 10
    keep_tags: ['^latest$', '^stable$']

- name: Preview deleting CI builds older than 30 days
  dockhand.registry.registry_repo:
    registry: registry.example.com
    repository: team/app
    match: ['^ci-']
    older_than: 30d
  check_mode: true
  register: plan

- name: How many bytes would deleting CI builds older than 30 days leave to garbage collection?
  dockhand.registry.registry_repo:
    registry: registry.example.com
    repository: team/app
    match: ['^ci-']
    older_than: 30d
    storage: true
  check_mode: true
  register: ci_plan

- name: Show the bytes
  ansible.builtin.debug:
    msg: "{{ ci_plan.storage.unlinked_bytes | human_readable }} in {{ ci_plan.storage.unlinked_blobs }} blobs"

- name: Delete every image of a repository
  dockhand.registry.registry_repo:
    registry: registry.example.com
    repository: team/old-app
    state: absent
"""

RETURN = r"""
deleted_tags:
  description: Tags removed (in check mode, tags that would be removed), sorted.
  returned: success
  type: list
  elements: str
  sample: [ci-101, ci-102]
kept_tags:
  description: Tags that stay, sorted.
  returned: success
  type: list
  elements: str
  sample: [latest, v1.2.0]
deleted_digests:
  description: Manifests deleted (or to be deleted) by digest because all of their tags went.
  returned: success
  type: list
  elements: str
  sample: [sha256:4b2f5e0d1a8c6e3f9b7d2a1c0e5f8b3d6a9c2e1f4b7d0a3c6e9f2b5d8a1c4e7f]
dangling_tags:
  description:
    - Tags the tag list showed without an image behind them, removed (or, in check mode, to be removed) whatever
      the policy says. They are dangling tags, which answer 404 (left by an interrupted delete on distribution 2.x,
      by another tool, or by a registry crash), and tags left on a throw-away manifest by a killed run.
    - They are part of RV(deleted_tags) too.
    - When a rule on names alone goes the untag way, only the kept tags are read, so only dangling tags among them
      are listed here; a dangling tag the rule selects goes by its tag DELETE unread and is listed in
      RV(untagged_tags). Check mode, which reads every tag, lists both here.
  returned: success
  type: list
  elements: str
  sample: [ci-104]
untagged_tags:
  description:
    - Deleted tags removed one by one rather than with their manifest. With RV(delete_method=throwaway) these are
      the tags whose image stays because a kept tag or index uses it (removed through throw-away manifests); with
      RV(delete_method=untag), every deleted tag but the dangling ones found as such.
  returned: success
  type: list
  elements: str
  sample: [ci-103]
untagged_manifests:
  description:
    - With RV(delete_method=untag), the manifests whose every tag was deleted. They stay in the registry, untagged,
      until garbage collection runs with delete-untagged; otherwise empty.
    - Also empty when a rule on names alone (O(match), O(keep_tags)) went the untag way reading no digest of the
      deleted tags (see the description); their manifests are left untagged all the same, and RV(msg) says they
      were not counted.
  returned: success
  type: list
  elements: str
  sample: [sha256:4b2f5e0d1a8c6e3f9b7d2a1c0e5f8b3d6a9c2e1f4b7d0a3c6e9f2b5d8a1c4e7f]
deleted_referrers:
  description:
    - The referrers (signatures, SBOMs, attestations) deleted, or in check mode to be deleted, with the images
      retention deletes, one entry each with C(subject), and C(digest) (an untagged referrer) or C(tag) (a referrer
      tag, also in RV(deleted_tags)), and C(found_by).
  returned: success
  type: list
  elements: dict
delete_method:
  description:
    - How the tags were removed. V(untag) - the registry deletes single tags (OCI tag delete; distribution v3, zot,
      GitLab and others), so each tag went with one DELETE. V(throwaway) - it does not (distribution 2.x), so tags
      went with their manifest by digest, or through throw-away manifests. V(digest) - O(state=absent), every
      manifest by digest. V(undecided) - check mode, which sends no write to find out. V(none) - nothing deleted.
  returned: success
  type: str
  sample: throwaway
reasons:
  description: For O(state=present), why each kept tag is kept (V(keep_tags), V(keep_last), V(not matched by match), ...).
  returned: success
  type: dict
  sample: {latest: keep_tags, v1.2.0: keep_last}
storage:
  description:
    - Only with O(storage=true). What the deleted manifests leave to garbage collection, within this repository
      (see O(storage) for exactly what is counted).
  returned: when O(storage=true)
  type: dict
  sample:
    manifests: 3
    unlinked_blobs: 7
    unlinked_bytes: 20480
  contains:
    manifests:
      description: How many deleted manifests were counted (one already gone counts nothing).
      type: int
    unlinked_blobs:
      description: How many distinct blobs no kept manifest of the repository takes any more.
      type: int
    unlinked_bytes:
      description:
        - Their bytes, as the manifests declare them. Garbage collection frees them on disk unless another
          repository, or a manifest that is already untagged, still uses them.
      type: int
msg:
  description: A one-line summary; it reminds that disk space comes back only after garbage collection.
  returned: success
  type: str
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.errors import run_or_fail
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import validate_repository
from ansible_collections.dockhand.registry.plugins.module_utils.oci import ManifestHead, parse_created
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import (
    UntagSupport,
    classify_tag,
    has_referrers_api,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.dockhand.registry.plugins.module_utils.registry_delete import (
    GC_NOTE,
    RemovalPlan,
    TagDeleteError,
    TagRemover,
    find_throwaway_tags,
    head_is_throwaway,
    index_children,
    is_throwaway,
    plan_referrers_of,
    plan_removal,
    plan_without,
    probe_delete_allowed,
    resolve_tags,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryNotFound
from ansible_collections.dockhand.registry.plugins.module_utils.registry_inspect import (
    ManifestInspector,
    ReadOnceClient,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_options import (
    registry_argument_spec,
    require_registry_libraries,
)
from ansible_collections.dockhand.registry.plugins.module_utils.retention import RetentionPolicy, TagInfo
from ansible_collections.dockhand.registry.plugins.module_utils.stop_request import stop_on_sigterm
from ansible_collections.dockhand.registry.plugins.module_utils.storage_accounting import Unlinked, unlinked_by_deleting

NOTHING_UNLINKED = Unlinked(manifests=0, blobs=0, size=0)


@dataclass
class NameReads:
    """What the name-only route read before handing over to the digest route (which then reads the rest).

    ``heads`` of tags it resolved, ``dangling`` tags it found without an image, and ``probed``, the tag
    already removed while learning how the registry deletes (None while nothing was removed).
    """

    heads: Dict[str, object] = field(default_factory=dict)
    dangling: List[str] = field(default_factory=list)
    probed: Optional[str] = None
    done: bool = False


class RepoManager:
    """Decides which tags of one repository go, and removes them outside check mode."""

    def __init__(self, module, client, policy):
        self.module = module
        self.client = client
        self.policy = policy
        self.repository = module.params["repository"]
        self.result = dict(changed=False, deleted_tags=[], kept_tags=[], deleted_digests=[], untagged_tags=[],
                           dangling_tags=[], untagged_manifests=[], delete_method="none", deleted_referrers=[])
        self.untag_support = UntagSupport()
        self.delete_checked = False
        # True once tags went by name with no digest read (so RV untagged_manifests cannot be told).
        self.removed_by_name = False
        self.inspector = ManifestInspector(client)
        self.stop = client.stop
        if module.params["storage"]:
            self.result["storage"] = NOTHING_UNLINKED.to_result()

    def _tag_infos(self, tags, known: NameReads):
        """TagInfo of every existing tag: a HEAD for most; manifest and config GETs only where creation time matters.

        Manifests and configs are fetched once per digest (ManifestInspector), so tags sharing
        an image cost one config GET. Tags in ``known`` (read by the name-only route) are not read again.
        """
        candidates = set()
        if self.policy.needs_creation_time:
            # Tags kept by their name alone never need their creation time.
            probe = self.policy.select([TagInfo(tag=tag, digest="") for tag in tags])
            candidates = set(probe.delete) | set(
                tag for tag, why in probe.reasons.items() if why not in ("keep_tags", "not matched by match")
            )
        heads = resolve_tags(self.client, self.repository,
                             sorted(set(tags) - candidates - set(known.heads) - set(known.dangling)))
        timed = sorted(candidates)
        inspector = self.inspector
        manifests = self.client.map_bounded(lambda tag: inspector.manifest(self.repository, tag), timed)
        found = [(self.repository, manifest) for manifest in manifests if manifest is not None]
        inspector.load_children(found)
        inspector.load_configs(found)
        infos = []
        media_types = {}
        # Listed tags without an image: 404 (dangling) or a throw-away manifest (an interrupted delete).
        dangling = set()
        dangling.update(find_throwaway_tags(self.client, self.repository, heads))
        heads.update(known.heads)  # none of them a throw-away: the name-only route checked
        dangling.update(set(tags) - set(heads) - set(tag for tag, manifest in zip(timed, manifests) if manifest))
        for tag, head in heads.items():
            if tag not in dangling:
                infos.append(TagInfo(tag=tag, digest=head.digest))
                media_types[head.digest] = head.media_type
        for tag, manifest in zip(timed, manifests):
            if manifest is None:
                continue
            if is_throwaway(manifest):
                dangling.add(tag)
                continue
            created = parse_created(inspector.created(self.repository, manifest))
            infos.append(TagInfo(tag=tag, digest=manifest.digest, created=created))
            media_types[manifest.digest] = manifest.media_type
        return infos, media_types, sorted(dangling)

    def _protected(self, kept_digests, media_types):
        """Children of the kept indexes: deleting them by digest would break those indexes."""
        protected = set()
        not_fetched = []
        for digest in sorted(kept_digests):
            manifest = self.inspector.cached(self.repository, digest)
            if manifest is None:
                not_fetched.append(ManifestHead(digest, media_types.get(digest), None))
            else:
                # Fetched already for its creation time; no second GET.
                protected.update(child["digest"] for child in manifest.child_descriptors if child.get("digest"))
        for children in index_children(self.client, self.repository, not_fetched).values():
            protected.update(children)
        return protected

    def _referrers_plan(self, plan: RemovalPlan, tags, tag_digests, kept_digests):
        """The removal plan for the referrers of the digests ``plan`` deletes (signatures, SBOMs, their tags)."""
        # Through the inspector's cache: the storage figures read these referrers again otherwise.
        client = ReadOnceClient(self.client, self.inspector)
        referrer_plan, details = plan_referrers_of(client, self.repository, plan.delete_digests, tags,
                                                   tag_digests, kept_digests)
        self.result["deleted_referrers"] = details
        return referrer_plan

    def _unlinked(self, removed_digests, kept_tags, tag_digests):
        """The storage figures of removing ``removed_digests`` while ``kept_tags`` stay (see the storage option).

        One GET per manifest (by digest, or by tag for kept tags not resolved yet: referrer tags),
        each digest once; the manifests keep_last fetched are not fetched again. No blob is read.
        """
        if not removed_digests:
            return NOTHING_UNLINKED.to_result()
        inspector = self.inspector
        removed = sorted(removed_digests)
        kept_digests = sorted(set(tag_digests[tag] for tag in kept_tags if tag in tag_digests))
        kept_by_tag = sorted(tag for tag in kept_tags if tag not in tag_digests)

        def fetch(reference):
            return inspector.manifest(self.repository, reference)

        by_digest = self.client.map_bounded(fetch, removed + kept_digests)
        by_tag = self.client.map_bounded(fetch, kept_by_tag)
        inspector.load_descendants([(self.repository, manifest) for manifest in by_digest + by_tag if manifest])
        known = inspector.known(self.repository)
        kept_roots = kept_digests + [manifest.digest for manifest in by_tag if manifest is not None]
        return unlinked_by_deleting(removed, kept_roots, known).to_result()

    def _record(self, removed_tags, deleted_digests, untagged, dangling, left_untagged, method):
        """Add one removal's outcome (or, in check mode, its plan) to the result."""
        result = self.result
        for key, values in (("deleted_tags", removed_tags), ("deleted_digests", deleted_digests),
                            ("untagged_tags", untagged), ("dangling_tags", dangling),
                            ("untagged_manifests", left_untagged)):
            result[key] = sorted(set(result[key]) | set(values))
        result["delete_method"] = method

    def _execute(self, plan: RemovalPlan):
        """Carry out ``plan`` (in check mode, record it); the result accumulates over calls."""
        if self.module.check_mode:
            self._record(plan.tags, plan.delete_digests, plan.untag, plan.dangling, [], "undecided")
            return
        if not self.delete_checked:
            probe_delete_allowed(self.client, self.repository)
            self.delete_checked = True
        # keep_last fetched these manifests already; untagging needs their exact bytes.
        fetched = {}
        for digest in set(plan.untag.values()) | set(plan.delete_digests):
            manifest = self.inspector.cached(self.repository, digest)
            if manifest is not None:
                fetched[digest] = manifest
        remover = TagRemover(self.client, self.repository, self.stop, self.untag_support)
        try:
            removal = remover.execute(plan, known_manifests=fetched)
        except TagDeleteError as exc:
            done = getattr(exc, "result", None)
            if done is not None:
                self._record(done.removed_tags, done.deleted_digests, done.untagged, done.dangling,
                             done.left_untagged, done.delete_method)
            raise
        self._record(removal.removed_tags, removal.deleted_digests, removal.untagged, removal.dangling,
                     removal.left_untagged, removal.delete_method)

    def present(self):
        tags = self.client.list_tags(self.repository)
        if not self.policy.selects_anything:
            self.result.update(kept_tags=sorted(tags), reasons=dict((tag, "no rule selects tags") for tag in tags),
                               msg="no retention rule given; %d tags kept" % len(tags))
            return
        # Referrer tags (sha256-<hex>, cosign's .sig/.att/.sbom) are never candidates: they follow their image.
        referrer_tags = sorted(tag for tag in tags if classify_tag(tag) is not None)
        image_tags = sorted(set(tags) - set(referrer_tags))
        known = NameReads()
        # storage counts the bytes of the deleted tags' manifests, so it needs their digests: as check mode does.
        if not self.module.check_mode and not self.policy.needs_creation_time and not referrer_tags \
                and not self.module.params["storage"]:
            known = self._present_by_name(tags, image_tags)
            if known.done:
                return
        self._present_by_digest(tags, referrer_tags, image_tags, known)

    def _present_by_name(self, tags, image_tags) -> NameReads:
        """A rule on names alone (O(match), O(keep_tags)) on a registry that untags: no digest of a deleted tag read.

        The rule's choice does not depend on what a tag points at, so only the kept tags are read (for
        dangling tags and left-over throw-aways, removed whatever the rule says), and the first selected
        tag, which learns how the registry deletes. If the registry has the referrers API, or does not
        untag, or the first tag is no plain image, the digest route takes over from what was read here.
        """
        selection = self.policy.select([TagInfo(tag=tag, digest="") for tag in image_tags])
        known = NameReads()
        if not selection.delete:
            return known  # nothing selected: the digest route reads no more than this one would
        known.heads = resolve_tags(self.client, self.repository, selection.keep)
        throwaways = find_throwaway_tags(self.client, self.repository, known.heads)
        known.dangling = sorted((set(selection.keep) - set(known.heads)) | set(throwaways))
        for tag in throwaways:
            del known.heads[tag]
        first = selection.delete[0]
        head = self.client.head_manifest(self.repository, first)
        if head is None or head_is_throwaway(self.client, self.repository, head) \
                or has_referrers_api(self.client, self.repository, head.digest):
            # Dangling or left over, or referrers to keep up (which needs the digests): digests decide.
            return known
        kept = sorted(set(selection.keep) - set(known.dangling))
        self.result.update(kept_tags=kept, reasons=dict((tag, selection.reasons[tag]) for tag in kept))
        self._diff(sorted(set(tags)), kept)
        self.result["changed"] = True
        known.heads[first] = head
        known.probed = first
        # The first tag goes as any tag whose digest was read: re-checked, then through a throw-away whose tag
        # DELETE tells whether the registry untags.
        self._execute(RemovalPlan(untag={first: head.digest}))
        if not self.untag_support.supported:
            return known
        self.removed_by_name = True
        try:
            self._execute(RemovalPlan(by_name=selection.delete[1:], dangling=known.dangling))
        finally:
            self.result["msg"] = self._summary(len(kept))
        known.done = True
        return known

    def _present_by_digest(self, tags, referrer_tags, image_tags, known: NameReads):
        """Plan with every tag's digest (and creation time where the rule needs it), then remove."""
        infos, media_types, dangling = self._tag_infos(image_tags, known)
        selection = self.policy.select(infos)
        tag_digests = dict((info.tag, info.digest) for info in infos)
        kept_digests = set(tag_digests[tag] for tag in selection.keep)
        plan = plan_removal(tag_digests, selection.delete, self._protected(kept_digests, media_types), dangling)
        referrer_plan = self._referrers_plan(plan, tags, tag_digests, kept_digests)
        if self.module.params["storage"]:
            kept_tags = set(tags) - set(plan.tags) - set(referrer_plan.tags) - set(dangling)
            self.result["storage"] = self._unlinked(set(plan.delete_digests) | set(referrer_plan.delete_digests),
                                                    kept_tags, tag_digests)
        reasons = dict(selection.reasons)
        reasons.update((tag, "referrer tag of a kept image") for tag in referrer_tags if tag not in referrer_plan.tags)
        kept = sorted(reasons)
        self.result.update(kept_tags=kept, reasons=reasons)
        self._diff(sorted(set(tag_digests) | set(dangling) | set(referrer_tags)), kept)
        if known.probed is not None:
            # Removed already through a throw-away (learning that the registry does not untag); what its plan
            # holds besides, the digest delete of its manifest, remains.
            if known.probed not in plan.untag:
                self.result["untagged_tags"] = [tag for tag in self.result["untagged_tags"] if tag != known.probed]
            plan = plan_without(plan, known.probed)
        elif not plan.tags:
            self.result["msg"] = "nothing to delete; %d tags kept" % len(kept)
            return
        self.result["changed"] = True
        try:
            # Referrers first: a run stopped in between leaves the image, which the next run deletes with them.
            if referrer_plan.tags or referrer_plan.delete_digests:
                self._execute(referrer_plan)
            self._execute(plan)
        finally:
            self.result["msg"] = self._summary(len(kept))

    def _summary(self, kept: int) -> str:
        """The one-line msg of a retention run; it says how the tags went and what GC must do."""
        result = self.result
        if result["delete_method"] == "untag" and self.removed_by_name:
            how = "%d by tag delete, %d dangling tags cleared; a rule on names reads no digest of a deleted tag," \
                  " so the manifests left untagged are not counted" % (
                      len(result["untagged_tags"]), len(result["dangling_tags"]))
            gc_note = GC_NOTE + " with delete-untagged, which frees untagged manifests"
        elif result["delete_method"] == "untag":
            how = "%d by tag delete, %d dangling tags cleared; %d manifests are left untagged" % (
                len(result["untagged_tags"]), len(result["dangling_tags"]), len(result["untagged_manifests"]))
            gc_note = GC_NOTE + " with delete-untagged, which frees untagged manifests"
        else:
            how = "%d manifests by digest, %d tags through %s, %d dangling tags cleared" % (
                len(result["deleted_digests"]), len(result["untagged_tags"]),
                "throw-away manifests" if result["delete_method"] == "throwaway"
                else "the registry's tag delete or throw-away manifests", len(result["dangling_tags"]))
            gc_note = GC_NOTE
        return "%s %d tags (%s), kept %d; %s" % (
            "would delete" if self.module.check_mode else "deleted", len(result["deleted_tags"]), how, kept, gc_note)

    def absent(self):
        try:
            tags = self.client.list_tags(self.repository)
        except RegistryNotFound:
            self.result["msg"] = "repository %s does not exist" % self.repository
            return
        if not tags:
            self.result["msg"] = "repository %s has no tags" % self.repository
            return
        heads = resolve_tags(self.client, self.repository, tags)
        dangling = sorted(set(tags) - set(heads))
        tags_of = {}
        for tag, head in heads.items():
            tags_of.setdefault(head.digest, []).append(tag)
        digests = set(tags_of)
        children = set()
        for child_digests in index_children(self.client, self.repository, heads.values()).values():
            children.update(child_digests)
        children -= digests
        self._diff(sorted(tags), [])
        self.result.update(changed=True, deleted_tags=sorted(tags), deleted_digests=sorted(digests | children),
                           dangling_tags=dangling, delete_method="digest")
        if self.module.params["storage"]:
            self.result["storage"] = self._unlinked(digests | children, (), {})
        self.result["msg"] = "%s all %d manifests of %s (%d tags, %d of them dangling); %s" % (
            "would delete" if self.module.check_mode else "deleted", len(digests | children),
            self.repository, len(tags), len(dangling), GC_NOTE)
        if self.module.check_mode:
            return
        probe_delete_allowed(self.client, self.repository)
        remover = TagRemover(self.client, self.repository, self.stop)
        # Indexes first, then the children they listed, so that no index is ever left half broken.
        self.client.map_bounded(lambda digest: remover.delete_digest(digest, tags_of[digest]), sorted(digests))
        self.client.map_bounded(remover.delete_digest, sorted(children))
        self.client.map_bounded(remover.clear_dangling, dangling)
        remover.settle()

    def _diff(self, before, after):
        if self.module._diff:
            self.result["diff"] = dict(
                before=dict(tags=before), after=dict(tags=after),
                before_header=self.repository, after_header=self.repository,
            )

    def run(self):
        if self.module.params["state"] == "absent":
            self.absent()
        else:
            self.present()
        return self.result


def main():
    argument_spec = registry_argument_spec()
    argument_spec.update(
        repository=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        keep_last=dict(type="int"),
        keep_tags=dict(type="list", elements="str", default=[]),
        match=dict(type="list", elements="str", default=[]),
        older_than=dict(type="str"),
        storage=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_registry_libraries(module)
    params = module.params

    def validated_policy():
        validate_repository(params["repository"])
        return RetentionPolicy.from_options(
            keep_last=params["keep_last"], keep_tags=params["keep_tags"], match=params["match"],
            older_than=params["older_than"],
        )

    policy = run_or_fail(module, validated_policy)
    if params["state"] == "absent" and (policy.selects_anything or params["keep_tags"]):
        module.fail_json(msg="keep_last, keep_tags, match and older_than apply to state=present only")
    managers = []

    def manage():
        with stop_on_sigterm() as stop:
            client = RegistryClient.from_params(params)
            client.stop = stop
            managers.append(RepoManager(module, client, policy))
            return managers[0].run()

    def done_before_the_failure():
        # RepoManager records what it did as it goes.
        partial = dict(managers[0].result) if managers else {}
        partial["changed"] = bool(partial.get("deleted_tags"))
        partial.pop("msg", None)
        return partial

    module.exit_json(**run_or_fail(module, manage, done_before_the_failure))


if __name__ == "__main__":
    main()
