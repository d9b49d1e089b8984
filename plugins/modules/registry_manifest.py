#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_manifest
short_description: Point a tag at an image, copy images between registries, delete tags and manifests safely
version_added: 1.0.0
description:
  - Manages one tag or one manifest of a repository on a registry that speaks the Registry HTTP API v2
    (the distribution registry, C(registry:2)), without a Docker engine.
  - With O(state=present) and O(source), makes O(tag) point at the source image. In the same repository this
    is a byte-exact manifest PUT; from another repository of the same registry the blobs are mounted across
    repositories; from another registry the blobs are streamed (never held whole in memory), skipping blobs the
    target already has. The child manifests of an index (multi-platform image) are copied first.
  - With O(state=absent) and O(tag), removes that tag only, see O(tag) for how tags that share its digest survive.
  - With O(state=absent) and O(digest), deletes the manifest; the result lists every tag that pointed at it.
  - With O(state=absent), a tag, manifest or repository that does not exist is already absent (no change).
  - Deleting frees no disk space by itself; the registry's garbage collection does (see the
    P(dockhand.registry.registry_server#role) role's C(garbage_collect) tasks).
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
    details: Reports what would be copied or deleted (RV(method), RV(digest), RV(deleted_tags)) without writing.
  diff_mode:
    support: full
    details: Shows the digest the tag (or digest) pointed at before and after.
  idempotent:
    support: full
    description: Running the task again reports no change once the tag (or digest) is in the requested state.
options:
  repository:
    description:
      - The repository in the registry given by O(registry), without the registry part, for example V(team/app).
    type: str
    required: true
  tag:
    description:
      - The tag to manage. Exactly one of O(tag) and O(digest) is required.
      - "O(state=absent) removes only this tag. The Registry API of distribution 2.x has no call that removes a tag:
        deleting a manifest by digest removes every tag on it. So when other tags share the digest (or a kept index
        lists it), the module checks that the tag still points at the digest it inspected, PUTs a unique throw-away
        manifest (an OCI image manifest without layers, with a tiny constant config blob and a unique annotation)
        under the tag, and deletes that throw-away manifest by its digest, which removes only this tag. If either
        step fails, the tag is pointed back at its original manifest (its exact bytes) before the module fails,
        so a failure never leaves the tag pointing at something you did not have. On SIGTERM between the two steps
        the tag is pointed back too; only a run killed harder (SIGKILL) can leave the tag on the throw-away
        manifest, and running the task again then removes it. When the tag is the only one on its digest, the
        manifest is deleted by digest directly."
      - "On a registry that deletes single tags (OCI tag delete: distribution v3, zot, GitLab and others), the
        throw-away's tag is removed with that tag DELETE rather than a digest delete; the module learns which kind
        of registry it talks to from that very request, so asking never risks more than the throw-away manifest.
        RV(delete_method) says which way it went. Check mode and diff show the same plan either way."
      - "A dangling tag, one the tag list shows but that answers 404 (distribution 2.x leaves those when a manifest
        delete fails half way), is removed too: a throw-away manifest is PUT under it and deleted. A delete counts
        as done only when the registry confirmed it, or when the tag list no longer shows the tag."
    type: str
  digest:
    description:
      - The manifest digest to manage, V(sha256:) followed by 64 hexadecimal digits.
      - With O(state=absent) the manifest is deleted, and every tag pointing at it goes with it.
      - With O(state=present) the source image is stored under its digest without a tag, and its digest must
        equal O(digest).
    type: str
  copy_referrers:
    description:
      - With O(state=present) and an image from another repository or registry, also copy the image's referrers
        (signatures, SBOMs, attestations) found in the source by the referrers API or the referrers tag, and
        cosign-style tags. On a target without the referrers API each copied referrer is added to the target's
        referrers tag C(sha256-<hex>), as OCI distribution-spec 1.1 says a client must. A second run copies
        nothing (RV(copied_referrers) is empty).
      - Listing a referrer whose subject is another image fails with one line before anything is written.
      - V(false) copies the image alone.
    type: bool
    default: true
  delete_referrers:
    description:
      - With O(state=absent) and O(digest), what happens to the manifest's referrers (signatures, SBOMs,
        attestations), that is the ones the referrers API lists, the ones the referrers tag C(sha256-<hex>) lists, that
        tag itself, and cosign-style tags C(sha256-<hex>.sig), C(.att) and C(.sbom).
      - V(true) deletes them first, then the manifest (RV(deleted_referrers)). A referrer that also has a tag of its
        own (not a referrer tag) stays with that tag. A referrer list that names a manifest whose subject is another
        image fails with one line before anything is deleted.
      - V(false) refuses with one line, deleting nothing, when the manifest has referrers.
      - O(state=absent) with O(tag) removes only that tag and never touches referrers; the image and its referrers
        stay while the manifest exists.
    type: bool
    default: true
  state:
    description:
      - V(present) makes O(tag) (or O(digest)) name the image O(source) names.
      - V(absent) removes O(tag), or deletes the manifest O(digest).
    type: str
    choices: [present, absent]
    default: present
  source:
    description:
      - The image to copy, as V([registry/]repository[:tag|@digest]). Without a registry part the image is taken
        from O(registry). Without a tag or digest, V(latest) is used.
      - Required with O(state=present).
    type: str
  source_username:
    description:
      - User name on the source registry, when it is another registry than O(registry).
      - The C(source_*) options are ignored when O(source) is on O(registry); the O(registry) credentials are used.
    type: str
  source_password:
    description:
      - Password or token for O(source_username).
    type: str
  source_docker_config:
    description:
      - Path of a Docker C(config.json) whose credentials are used for the source registry when
        O(source_username) is not set. Defaults to O(docker_config).
    type: path
  source_validate_certs:
    description:
      - Whether to verify the source registry's TLS certificate.
      - O(validate_certs), O(ca_cert), O(client_cert) and O(client_key) apply to O(registry) only.
    type: bool
    default: true
  source_ca_cert:
    description:
      - CA bundle used to verify the source registry's certificate.
    type: path
notes:
  - A tag can be removed safely only while nobody else changes it at the same time; the module re-checks
    the tag right before it acts and refuses to touch a tag that moved.
  - The throw-away manifests are deleted at once; the small shared config blob they use stays until the next
    garbage collection, like every deleted manifest's blobs.
seealso:
  - module: dockhand.registry.registry_repo
  - module: dockhand.registry.registry_manifest_info
"""

EXAMPLES = r"""
- name: Publish app:1.2.0 as app:stable on the same registry (a byte-exact manifest PUT)
  dockhand.registry.registry_manifest:
    registry: registry.example.com
    repository: team/app
    tag: stable
    source: team/app:1.2.0

- name: Copy an image from a staging registry, with credentials for both
  dockhand.registry.registry_manifest:
    registry: registry.example.com
    username: deploy
    password: "{{ prod_password }}"
    repository: team/app
    tag: 1.2.0
    source: staging.example.com/team/app:1.2.0
    source_username: reader
    source_password: "{{ staging_password }}"

- name: Remove one tag; other tags on the same image stay
  dockhand.registry.registry_manifest:
    registry: registry.example.com
    repository: team/app
    tag: 1.2.0-rc1
    state: absent

- name: Delete a manifest by digest, with every tag on it
  dockhand.registry.registry_manifest:
    registry: registry.example.com
    repository: team/app
    digest: sha256:4b2f5e0d1a8c6e3f9b7d2a1c0e5f8b3d6a9c2e1f4b7d0a3c6e9f2b5d8a1c4e7f
    state: absent
  register: deleted

- name: Show which tags went with it
  ansible.builtin.debug:
    var: deleted.deleted_tags
"""

RETURN = r"""
digest:
  description:
    - The digest the tag (or digest) points at after the task; V(null) once removed.
  returned: success
  type: str
  sample: sha256:4b2f5e0d1a8c6e3f9b7d2a1c0e5f8b3d6a9c2e1f4b7d0a3c6e9f2b5d8a1c4e7f
previous_digest:
  description:
    - The digest the tag (or digest) pointed at before the task; V(null) if it did not exist.
  returned: success
  type: str
  sample: sha256:0e5f8b3d6a9c2e1f4b7d0a3c6e9f2b5d8a1c4e7f4b2f5e0d1a8c6e3f9b7d2a1c
method:
  description:
    - How the change is (or would be) made.
    - V(same_repository), V(mount) or V(copy) for O(state=present).
    - V(delete_digest) (the tag was the only one on its manifest, or O(digest) was given) or V(untag)
      (a throw-away manifest removed the tag alone) for O(state=absent), or V(dangling) (the tag resolved to no
      image, or to a throw-away manifest left by an interrupted delete, and was cleared through a throw-away manifest).
    - V(none) when nothing needs to change.
  returned: success
  type: str
  sample: untag
copied_referrers:
  description:
    - With O(state=present) and O(copy_referrers=true), the referrers the target lacked (in check mode, lacks),
      with C(digest), C(reference) (where it goes), C(copied) and C(referrers_tag_updated).
  returned: state is present and copy_referrers is true
  type: list
  elements: dict
deleted_referrers:
  description:
    - With O(state=absent) and O(digest), the referrers deleted (or to be deleted) with the manifest, one entry
      each, with C(subject), C(digest) (an untagged referrer) or C(tag) (a referrer tag), and C(found_by).
  returned: changed and state is absent
  type: list
  elements: dict
delete_method:
  description:
    - For O(state=absent), how the registry removed the tag. V(untag) - the registry's tag delete (it deletes
      single tags). V(throwaway) - a throw-away manifest deleted by digest (distribution 2.x, which cannot delete a
      tag). V(digest) - the manifest by digest, with every tag on it. V(undecided) - check mode, which sends no
      write to find out.
    - Either way the image's manifest stays until garbage collection; a manifest left without tags is freed
      only by garbage collection with delete-untagged.
  returned: changed and state is absent
  type: str
  sample: throwaway
deleted_tags:
  description:
    - The tags that are (or in check mode would be) removed. With O(digest), every tag that pointed at it.
  returned: success
  type: list
  elements: str
  sample: [1.2.0-rc1]
sharing_tags:
  description:
    - With O(state=absent) and O(tag), the other tags on the same digest, which stay.
  returned: success
  type: list
  elements: str
  sample: [latest, "1.2"]
transfer:
  description:
    - What a copy did (O(state=present), not in check mode).
  returned: changed and state is present
  type: dict
  contains:
    manifests_put:
      description: Digests of the manifests written, children of an index first.
      type: list
      elements: str
    blobs_copied:
      description: Blobs streamed from the source registry.
      type: list
      elements: str
    blobs_mounted:
      description: Blobs mounted from the source repository of the same registry.
      type: list
      elements: str
    blobs_present:
      description: Blobs the target repository already had.
      type: list
      elements: str
    bytes_copied:
      description: Bytes streamed.
      type: int
msg:
  description: A one-line summary.
  returned: success
  type: str
  sample: removed tag 1.2.0-rc1 of team/app through a throw-away manifest; 2 other tags keep its image
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.errors import run_or_fail
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import parse_reference
from ansible_collections.dockhand.registry.plugins.module_utils.oci import normalize_registry_host
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import (
    UntagSupport,
    apply_index_change,
    classify_tag,
    has_referrers_api,
    plan_add_referrer,
    plan_referrers_copy,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.dockhand.registry.plugins.module_utils.registry_copy import (
    CopyError,
    ImageCopier,
    copy_method,
    summarize,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_delete import (
    GC_NOTE,
    TagRemover,
    index_children,
    plan_referrers_of,
    plan_single_tag,
    remove_single_tag,
    resolve_tags,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError
from ansible_collections.dockhand.registry.plugins.module_utils.registry_options import (
    manifest_reference_argument_spec,
    registry_argument_spec,
    require_registry_libraries,
    validate_manifest_reference,
)
from ansible_collections.dockhand.registry.plugins.module_utils.stop_request import stop_on_sigterm


def same_host(left: str, right: str) -> bool:
    """Whether two registry spellings (maybe with a scheme or trailing slash) name one host."""
    return normalize_registry_host(left or "") == normalize_registry_host(right or "")


class ManifestManager:
    """Decides and applies the state of one tag or manifest."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.repository = self.params["repository"]
        self.tag = self.params["tag"]
        self.digest = self.params["digest"]
        self.reference = self.tag or self.digest
        self.result = dict(changed=False, deleted_tags=[], method="none")

    # state=present

    def _source(self):
        ref = parse_reference(self.params["source"])
        same_registry = ref.registry is None or same_host(ref.registry, self.client.host) or same_host(
            ref.registry, self.params["registry"])
        if same_registry:
            return ref, self.client, True
        # TLS material of the target registry is not for another host; credentials come from
        # source_* options or the docker config only.
        client = RegistryClient.from_params(
            self.params, prefix="source_", registry=ref.registry,
            validate_certs=self.params["source_validate_certs"],
            ca_cert=self.params["source_ca_cert"], client_cert=None, client_key=None,
        )
        return ref, client, False

    def decide_present(self, current_digest, source_digest):
        """Why the reference must change, or None when it already names the source image."""
        if current_digest == source_digest:
            return None
        if current_digest is None:
            return "%s does not exist yet" % self.reference
        return "%s points at %s, the source is %s" % (self.reference, current_digest, source_digest)

    def present(self):
        ref, source_client, same_registry = self._source()
        source_reference = ref.digest or ref.tag or "latest"
        current = self.client.head_manifest(self.repository, self.reference)
        current_digest = current.digest if current else None
        self.result.update(previous_digest=current_digest, digest=current_digest)

        manifest = None
        source_digest = ref.digest
        if source_digest is None or (current_digest != source_digest):
            manifest = source_client.get_manifest(ref.repository, source_reference)
            if manifest is None:
                raise CopyError("source image %s not found on registry %s" % (self.params["source"], source_client.host))
            source_digest = manifest.digest
        if self.digest and source_digest != self.digest:
            raise CopyError("source image %s has digest %s, not the requested %s"
                            % (self.params["source"], source_digest, self.digest))

        reason = self.decide_present(current_digest, source_digest)
        self._diff(current_digest, source_digest)
        referrers = []
        if self.params["copy_referrers"] and not (same_registry and ref.repository == self.repository):
            # Read-only: against the target as it is now (the image itself may still be missing there).
            referrers = [plan for plan in plan_referrers_copy(source_client, ref.repository, self.client,
                                                              self.repository, source_digest) if plan.changed]
            self.result["copied_referrers"] = [plan.to_result() for plan in referrers]
        if reason is None and not referrers:
            self.result["msg"] = "%s:%s already points at %s" % (self.repository, self.reference, source_digest)
            return
        if reason is None:
            self.result["changed"] = True
            if not self.module.check_mode:
                self._copy_referrers(source_client, ref.repository, same_registry, referrers, source_digest)
            self.result["msg"] = "%s:%s already points at %s; %s %d of its referrers" % (
                self.repository, self.reference, source_digest,
                "would copy" if self.module.check_mode else "copied", len(referrers))
            return
        method = copy_method(same_registry, ref.repository, self.repository)
        self.result.update(changed=True, digest=source_digest, method=method)
        if self.module.check_mode:
            self.result["msg"] = "would point %s:%s at %s (%s; %s)" % (
                self.repository, self.reference, source_digest, method, reason)
            return
        copier = ImageCopier(source_client, ref.repository, self.client, self.repository, same_registry)
        copied = copier.copy(manifest, self.reference)
        self.result["transfer"] = copied.as_dict()
        self._copy_referrers(source_client, ref.repository, same_registry, referrers, source_digest)
        counts = summarize(copied)
        self.result["msg"] = (
            "pointed %s:%s at %s (%s): %d manifests written, %d blobs copied, %d mounted, %d already present"
            % (self.repository, self.reference, source_digest, method,
               counts["manifests"], counts["copied"], counts["mounted"], counts["present"])
        )

    def _copy_referrers(self, source_client, source_repository, same_registry, referrers, subject):
        """Copy the planned referrers (after their image), then list them in the target's referrers tag.

        Whether the target has the referrers API is asked again now that the image is there: a
        repository that did not exist at planning time answers 404 either way.
        """
        target_api = None
        for plan in referrers:
            if plan.copy_manifest:
                manifest = source_client.get_manifest(source_repository, plan.referrer.digest)
                if manifest is None:
                    raise CopyError("referrer %s of %s vanished from %s/%s while copying"
                                    % (plan.referrer.digest, self.reference, source_client.host, source_repository))
                ImageCopier(source_client, source_repository, self.client, self.repository,
                            same_registry).copy(manifest, plan.reference)
            if plan.index_change is not None and target_api is None:
                target_api = has_referrers_api(self.client, self.repository, subject)
            if plan.index_change is not None and not target_api:
                # Re-planned now: an earlier referrer of this run may have changed the same tag.
                manifest = self.client.get_manifest(self.repository, plan.referrer.digest)
                apply_index_change(self.client, self.repository, plan_add_referrer(self.client, self.repository,
                                                                                   manifest))

    # state=absent

    def absent_tag(self):
        plan = plan_single_tag(self.client, self.repository, self.tag)
        self.result.update(previous_digest=plan.digest, digest=plan.digest, sharing_tags=plan.sharing_tags)
        if plan.action == "absent":
            self.result["msg"] = "tag %s of %s does not exist" % (self.tag, self.repository)
            self._diff(None, None)
            return
        self.result.update(changed=True, method=plan.action, deleted_tags=[self.tag], digest=None)
        self._diff(plan.digest, None)
        if plan.action == "dangling":
            text = ("tag %s of %s, which the tag list shows but which resolves to no image (left by an interrupted"
                    " delete), through a throw-away manifest" % (self.tag, self.repository))
        elif plan.action == "untag":
            why = []
            if plan.sharing_tags:
                why.append("%d other tags keep its image" % len(plan.sharing_tags))
            if plan.referencing_indexes:
                why.append("indexes %s list it" % ", ".join(plan.referencing_indexes))
            text = "tag %s of %s through a throw-away manifest%%s; %s" % (self.tag, self.repository, " and ".join(why))
        else:
            text = "tag %s of %s by deleting its manifest %s, which no other tag uses" % (
                self.tag, self.repository, plan.digest)
        self.result["delete_method"] = dict(untag="undecided", dangling="throwaway").get(plan.action, "digest")
        if self.module.check_mode:
            self.result["msg"] = "would remove " + text.replace("%s", "")
            return
        support = UntagSupport()
        if not remove_single_tag(self.client, self.repository, self.tag, plan, self.client.stop, support):
            self.result.update(changed=False, deleted_tags=[], method="none")
            self.result["msg"] = "tag %s of %s disappeared meanwhile" % (self.tag, self.repository)
            return
        if plan.action == "untag":
            self.result["delete_method"] = support.method
            text = text % (" and the registry's tag delete" if support.method == "untag" else "")
        self.result["msg"] = "removed %s; %s" % (text, GC_NOTE)

    def absent_digest(self):
        head = self.client.head_manifest(self.repository, self.digest)
        if head is None:
            self.result.update(previous_digest=None, digest=None)
            self.result["msg"] = "manifest %s does not exist in %s" % (self.digest, self.repository)
            self._diff(None, None)
            return
        listed = self.client.list_tags(self.repository)
        heads = resolve_tags(self.client, self.repository, listed)
        tags = sorted(tag for tag, tag_head in heads.items() if tag_head.digest == self.digest)
        indexes = sorted(index for index, children in index_children(self.client, self.repository, heads.values()).items()
                         if self.digest in children and index != self.digest)
        for index in indexes:
            self.module.warn("manifest %s is listed by index %s, which breaks once it is deleted" % (self.digest, index))
        tag_digests = dict((tag, tag_head.digest) for tag, tag_head in heads.items() if classify_tag(tag) is None)
        kept = set(tag_digests.values()) - {self.digest}
        referrer_plan, referrers = plan_referrers_of(self.client, self.repository, [self.digest], listed,
                                                     tag_digests, kept)
        if referrers and not self.params["delete_referrers"]:
            raise RegistryError(
                "manifest %s of %s on registry %s has %d referrers and referrer tags (%s); nothing was deleted;"
                " delete_referrers: true deletes them with it" % (
                    self.digest, self.repository, self.client.host, len(referrers),
                    ", ".join(entry.get("tag") or entry["digest"] for entry in referrers[:5])))
        self.result.update(changed=True, method="delete_digest", deleted_tags=sorted(tags + referrer_plan.tags),
                           previous_digest=self.digest, digest=None, delete_method="digest",
                           deleted_referrers=referrers)
        self._diff(self.digest, None, tags)
        text = "manifest %s of %s and its %d tags, with %d referrers" % (
            self.digest, self.repository, len(tags), len(referrers))
        if self.module.check_mode:
            self.result["msg"] = "would delete " + text
            return
        remover = TagRemover(self.client, self.repository, self.client.stop)
        if referrer_plan.tags or referrer_plan.delete_digests:
            # Referrers first: a run stopped in between leaves the image, and the next run finishes the job.
            remover.execute(referrer_plan, digests_by_untag=False)
        remover.delete_digest(self.digest, tags)
        # An unclear answer (a 404 after a failed attempt) may have left the tags dangling.
        remover.settle()
        self.result["msg"] = "deleted %s; %s" % (text, GC_NOTE)

    def _diff(self, before, after, tags=None):
        if not self.module._diff:
            return
        before_state = dict(digest=before)
        if tags is not None:
            before_state["tags"] = tags
        self.result["diff"] = dict(
            before=before_state, after=dict(digest=after),
            before_header="%s:%s" % (self.repository, self.reference),
            after_header="%s:%s" % (self.repository, self.reference),
        )

    def run(self):
        if self.params["state"] == "present":
            self.present()
        elif self.tag:
            self.absent_tag()
        else:
            self.absent_digest()
        return self.result


def validate_params(params):
    """Raise ImageReferenceError for names the registry would reject."""
    validate_manifest_reference(params)
    if params["source"] is not None:
        parse_reference(params["source"])


def main():
    argument_spec = registry_argument_spec()
    argument_spec.update(manifest_reference_argument_spec())
    argument_spec.update(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        delete_referrers=dict(type="bool", default=True),
        copy_referrers=dict(type="bool", default=True),
        source=dict(type="str"),
        source_username=dict(type="str"),
        source_password=dict(type="str", no_log=True),
        source_docker_config=dict(type="path"),
        source_validate_certs=dict(type="bool", default=True),
        source_ca_cert=dict(type="path"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("tag", "digest")],
        required_one_of=[("tag", "digest")],
        required_if=[("state", "present", ["source"])],
        supports_check_mode=True,
    )
    require_registry_libraries(module)
    run_or_fail(module, lambda: validate_params(module.params))

    def manage():
        with stop_on_sigterm() as stop:
            client = RegistryClient.from_params(module.params)
            client.stop = stop
            return ManifestManager(module, client).run()

    module.exit_json(**run_or_fail(module, manage))


if __name__ == "__main__":
    main()
