#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_manifest_info
short_description: Inspect one image manifest in a registry (Registry HTTP API v2)
version_added: 1.0.0
description:
  - Fetches the manifest that O(repository) with O(tag) or O(digest) names, and reports its digest,
    media type, size, the raw manifest, the image config (creation time, OS, architecture, labels)
    and the layers; for a multi-platform image (OCI index or Docker manifest list) the platforms.
  - A reference that does not exist is not a failure, RV(exists) is V(false) then. An unknown
    repository is a failure.
  - The manifest's digest is verified against its bytes.
  - Read-only; talks HTTP to the registry and needs no Docker engine.
author:
  - dockhand.registry contributors (@dockhand)
extends_documentation_fragment:
  # Ours first: for attributes set twice, the fragment named first wins.
  - dockhand.registry.registry
  - dockhand.registry.registry.actiongroup_registry
  - dockhand.registry.registry.info_module
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
options:
  repository:
    description:
      - Repository in the registry, for example V(team/app) (no registry host, tag or digest).
      - On Docker Hub, a name without V(/) means an official image (V(library/<name>)).
    type: str
    required: true
  tag:
    description:
      - Tag to inspect. Mutually exclusive with O(digest); one of them is required.
    type: str
  digest:
    description:
      - Manifest digest to inspect, V(sha256:) followed by 64 hexadecimal digits.
    type: str
  referrers:
    description:
      - Also list the manifest's referrers (signatures, SBOMs, attestations) in RV(referrers).
      - They come from the registry's OCI referrers API where it has one. Without it (distribution
        2.x, for example) they come from the referrers tag V(sha256-<hex>), the image index that
        OCI 1.1 tools such as oras keep there instead. cosign's tags V(sha256-<hex>.sig),
        V(sha256-<hex>.att) and V(sha256-<hex>.sbom) are listed either way.
      - Costs up to five more requests. A referrers tag or referrers API answer that is not a valid
        image index fails the task with one line.
    type: bool
    default: false
seealso:
  - module: dockhand.registry.registry_repo_info
  - module: dockhand.registry.registry_manifest
"""

EXAMPLES = r"""
- name: Inspect team/app:v1
  dockhand.registry.registry_manifest_info:
    registry: registry.example.com
    repository: team/app
    tag: v1
  register: app_v1

- name: Fail when the image is older than a year
  ansible.builtin.assert:
    that:
      - app_v1.exists
      - (now(utc=true) - (app_v1.config.created[:19] | to_datetime('%Y-%m-%dT%H:%M:%S'))).days < 365

- name: Platforms of a multi-platform image, with settings shared by all registry modules
  module_defaults:
    group/dockhand.registry.registry:
      registry: 127.0.0.1:5000
  block:
    - name: Inspect tools/busybox by digest
      dockhand.registry.registry_manifest_info:
        repository: tools/busybox
        digest: sha256:6aad9495ad9b9795e8964e9034dfbcfb69a7848ae2ec758e24851644904c7b95
      register: busybox

    - name: Show the architectures of its platforms
      ansible.builtin.debug:
        msg: "{{ busybox.platforms | map(attribute='architecture') | list }}"

- name: Signatures and SBOMs of team/app:v1
  dockhand.registry.registry_manifest_info:
    registry: registry.example.com
    repository: team/app
    tag: v1
    referrers: true
  register: app_v1_referrers

- name: Fail unless team/app:v1 carries an SPDX SBOM
  ansible.builtin.assert:
    that:
      - app_v1_referrers.referrers | selectattr('artifact_type', 'equalto', 'application/spdx+json') | list
"""

RETURN = r"""
exists:
  description: Whether the tag or digest exists in the repository.
  returned: success
  type: bool
  sample: true
digest:
  description: Digest of the manifest (sha256 of its exact bytes).
  returned: when RV(exists)
  type: str
  sample: sha256:313e4e2b775b8dc19d12d72fc129a63fa53bf87c4fc98a7c60ec399dd2643bf1
media_type:
  description: Media type of the manifest.
  returned: when RV(exists)
  type: str
  sample: application/vnd.docker.distribution.manifest.v2+json
size:
  description: Size of the manifest itself in bytes.
  returned: when RV(exists)
  type: int
  sample: 525
total_size:
  description:
    - Bytes the whole image declares, manifest, config and layers; for an index, the index and every
      platform image, blobs shared between platforms counted once.
  returned: when RV(exists)
  type: int
  sample: 11099
is_index:
  description: Whether the manifest is an OCI index or Docker manifest list (multi-platform image).
  returned: when RV(exists)
  type: bool
manifest:
  description: The manifest as JSON, as the registry stores it.
  returned: when RV(exists)
  type: dict
config:
  description:
    - Summary of the image config. V(null) for an index (see RV(platforms)).
  returned: when RV(exists)
  type: dict
  contains:
    created:
      description: Creation time as the image records it.
      type: str
      sample: "2020-01-01T00:00:00Z"
    os:
      description: Operating system.
      type: str
      sample: linux
    architecture:
      description: CPU architecture.
      type: str
      sample: amd64
    variant:
      description: CPU variant, if any.
      type: str
    labels:
      description: Image labels.
      type: dict
      sample: {org.opencontainers.image.version: "1.2.3"}
    digest:
      description: Digest of the config blob.
      type: str
layers:
  description: Layers of an image manifest, base layer first. Empty for an index.
  returned: when RV(exists)
  type: list
  elements: dict
  contains:
    digest:
      description: Layer blob digest.
      type: str
    size:
      description: Layer size in bytes (compressed, as stored).
      type: int
    media_type:
      description: Layer media type.
      type: str
platforms:
  description: For an index, one entry per platform image. Empty for an image manifest.
  returned: when RV(exists)
  type: list
  elements: dict
  contains:
    digest:
      description: Digest of the platform's manifest.
      type: str
    media_type:
      description: Media type of the platform's manifest.
      type: str
    size:
      description: Size of the platform's manifest.
      type: int
    os:
      description: Operating system.
      type: str
    architecture:
      description: CPU architecture.
      type: str
    variant:
      description: CPU variant, if any.
      type: str
    os_version:
      description: OS version (Windows images), if any.
      type: str
referrers:
  description:
    - Manifests that refer to this one (signatures, SBOMs, attestations), each listed once.
  returned: when RV(exists) and O(referrers=true)
  type: list
  elements: dict
  contains:
    digest:
      description: Digest of the referrer's manifest.
      type: str
    media_type:
      description: Media type of the referrer's manifest.
      type: str
    size:
      description: Size of the referrer's manifest in bytes.
      type: int
    artifact_type:
      description:
        - The referrer's C(artifactType), or for an image manifest without one its config media type;
          V(null) for an index without one.
      type: str
      sample: application/spdx+json
    annotations:
      description: The referrer's annotations.
      type: dict
    found_by:
      description:
        - V(referrers_api) (the registry's referrers API), V(referrers_tag) (the referrers tag
          V(sha256-<hex>)) or V(cosign_tag) (a cosign tag V(sha256-<hex>.sig), V(.att) or V(.sbom)).
      type: str
      sample: referrers_tag
    tag:
      description: The referrers tag or cosign tag it was found through; V(null) for the referrers API.
      type: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.errors import run_or_fail
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import discover_referrers
from ansible_collections.dockhand.registry.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.dockhand.registry.plugins.module_utils.registry_inspect import (
    ManifestInspector,
    config_summary,
    descriptor_summary,
    hub_repository,
    platform_summary,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_options import (
    manifest_reference_argument_spec,
    registry_argument_spec,
    require_registry_libraries,
    validate_manifest_reference,
)


class ManifestReader:
    """Fetches one manifest and what it references; never writes."""

    def __init__(self, client, repository, reference, referrers=False):
        self.client = client
        self.repository = hub_repository(client, repository)
        self.reference = reference
        self.referrers = referrers
        self.inspector = ManifestInspector(client)

    def run(self):
        manifest = self.inspector.manifest(self.repository, self.reference)
        if manifest is None:
            # Absent reference is an answer; an unknown repository is a mistake (raises RegistryNotFound).
            self.client.list_tags(self.repository)
            return dict(changed=False, exists=False)
        items = [(self.repository, manifest)]
        self.inspector.load_children(items)
        self.inspector.load_configs(items)
        config = None
        if not manifest.is_index and manifest.config_descriptor:
            config_digest = manifest.config_descriptor.get("digest")
            config = config_summary(self.inspector.config(self.repository, config_digest))
            if config is not None:
                config["digest"] = config_digest
        result = dict(
            changed=False,
            exists=True,
            digest=manifest.digest,
            media_type=manifest.media_type,
            size=manifest.size,
            total_size=self.inspector.total_size(self.repository, manifest),
            is_index=manifest.is_index,
            manifest=manifest.data,
            config=config,
            layers=[descriptor_summary(d) for d in manifest.layer_descriptors],
            platforms=[platform_summary(d) for d in manifest.child_descriptors],
        )
        if self.referrers:
            found = discover_referrers(self.client, self.repository, manifest.digest)
            result["referrers"] = [referrer.to_result() for referrer in found.referrers]
        return result


def main():
    argument_spec = registry_argument_spec()
    argument_spec.update(manifest_reference_argument_spec())
    argument_spec.update(referrers=dict(type="bool", default=False))
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("tag", "digest")],
        required_one_of=[("tag", "digest")],
        required_together=[("username", "password")],
    )
    params = module.params
    run_or_fail(module, lambda: validate_manifest_reference(params))
    require_registry_libraries(module)

    def inspect():
        with RegistryClient.from_params(params) as client:
            return ManifestReader(client, params["repository"], params["tag"] or params["digest"],
                                  referrers=params["referrers"]).run()

    module.exit_json(**run_or_fail(module, inspect))


if __name__ == "__main__":
    main()
